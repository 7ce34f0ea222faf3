"""Admin: the webhook set-up on the tenant page, the secret shown once, and the inventory events list."""

import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from devices.models import InventoryEvent
from portal.models import Tenant
from tests.devices.jamf_helpers import SECRET, with_secret


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def rotate(client, *tenants):
    return client.post(reverse("admin:portal_tenant_changelist"), {
        "action": "rotate_webhook_secret", "_selected_action": [t.pk for t in tenants],
    })


def test_tenant_page_shows_the_webhook_url_and_set_up_but_never_the_secret(admin_a, tenant_a):
    with_secret(tenant_a)
    page = logged_in(admin_a).get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    assert "/hooks/jamf/alpha/" in page
    assert "X-Webhook-Secret" in page and "ComputerCheckIn" in page
    assert "A secret is set" in page
    assert SECRET not in page


def test_rotation_shows_the_new_secret_once_and_the_old_one_stops_working(admin_a, tenant_a):
    with_secret(tenant_a)
    client = logged_in(admin_a)
    response = rotate(client, tenant_a)
    assert response.status_code == 302
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    tenant_a.refresh_from_db()
    new = tenant_a.webhook_secret
    assert new != SECRET and len(new) >= 32 and new in message
    assert new in client.get(response.url).content.decode()  # the message, once
    # Nowhere afterwards:
    assert new not in client.get(response.url).content.decode()
    assert new not in client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    body = json.dumps({"webhook": {"webhookEvent": "JSSStartup"}})
    hooks = Client()
    assert hooks.post("/hooks/jamf/alpha/", body, "application/json", HTTP_X_WEBHOOK_SECRET=SECRET).status_code == 401
    assert hooks.post("/hooks/jamf/alpha/", body, "application/json", HTTP_X_WEBHOOK_SECRET=new).status_code == 202


def test_a_customer_admin_rotates_only_their_own_tenants(admin_a, tenant_a, tenant_b):
    with_secret(tenant_b, "bravo-secret")
    rotate(logged_in(admin_a), tenant_a, tenant_b)
    tenant_b.refresh_from_db()
    assert tenant_b.webhook_secret == "bravo-secret"
    assert Tenant.objects.get(pk=tenant_a.pk).webhook_secret


def test_a_viewer_cannot_rotate(viewer_a, tenant_a):
    with_secret(tenant_a)
    rotate(logged_in(viewer_a), tenant_a)
    tenant_a.refresh_from_db()
    assert tenant_a.webhook_secret == SECRET


@pytest.fixture
def events(tenant_a, tenant_b):
    a = InventoryEvent.objects.create(tenant=tenant_a, source="webhook", event_type="ComputerCheckIn",
                                      raw_body='{"webhook": {"webhookEvent": "ComputerCheckIn"}, "marker": "A1"}')
    b = InventoryEvent.objects.create(tenant=tenant_b, source="webhook", event_type="ComputerAdded",
                                      raw_body='{"marker": "B1"}', status="rejected", error="bad")
    return a, b


def test_events_list_is_scoped_and_filters_by_type_and_status(admin_a, events):
    a, b = events
    client = logged_in(admin_a)
    page = client.get(reverse("admin:devices_inventoryevent_changelist"))
    assert list(page.context["cl"].result_list) == [a]
    assert "ComputerAdded" not in page.content.decode()  # not even in the filters
    filtered = client.get(reverse("admin:devices_inventoryevent_changelist") + "?status__exact=rejected")
    assert list(filtered.context["cl"].result_list) == []
    by_type = client.get(reverse("admin:devices_inventoryevent_changelist") + "?event_type=ComputerCheckIn")
    assert list(by_type.context["cl"].result_list) == [a]
    assert client.get(reverse("admin:devices_inventoryevent_change", args=[b.pk])).status_code == 302  # not theirs


def test_event_page_shows_the_raw_body(admin_a, events):
    a, _ = events
    page = logged_in(admin_a).get(reverse("admin:devices_inventoryevent_change", args=[a.pk])).content.decode()
    assert "&quot;marker&quot;: &quot;A1&quot;" in page


def test_operator_can_queue_failed_events_again(operator_a, events):
    from django_q.models import OrmQ

    a, b = events
    InventoryEvent.objects.filter(pk__in=[a.pk, b.pk]).update(status="failed")
    logged_in(operator_a).post(reverse("admin:devices_inventoryevent_changelist"), {
        "action": "process_again", "_selected_action": [a.pk, b.pk]})
    assert OrmQ.objects.count() == 1  # only the event of their own tenant
