"""A Mac's page: compliance with its reasons, user accounts with registration, history per user, and the
Intune actions as buttons with the same confirmation page as the bulk actions."""

import pytest
from django.urls import reverse

from compliance.models import CompliancePolicy, ComplianceReport
from compliance.outbox import queue_reports
from devices.models import Computer
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import drain, enable, registered_macs, statuses
from tests.conftest import member

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


@pytest.fixture
def intune_tenant(simulator, tenant_a, settings):
    settings.INTUNE_BACKOFF_BASE = 0.01
    settings.INTUNE_BACKOFF_MAX = 0.05
    settings.INTUNE_DELIVERY_CONCURRENCY = 1
    enable(simulator, tenant_a)
    return tenant_a


def change_url(mac):
    return reverse("admin:devices_computer_change", args=[mac.pk])


def action_url(mac, action):
    return reverse("admin:devices_computer_intune_action", args=[mac.pk, action])


def test_page_shows_compliance_reasons_users_and_history(client, intune_tenant, viewer_a):
    CompliancePolicy.objects.create(tenant=intune_tenant, name="Baseline", require_filevault=True)
    mac, = registered_macs(intune_tenant, 1, users=2, filevault_state="NOT_ENCRYPTED")
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    client.force_login(viewer_a)
    page = client.get(change_url(mac)).content.decode()
    # Compliance with its reasons and the Jamf remedy.
    assert "Not compliant" in page and "filevault_off" in page and "Jamf Pro remedy" in page
    # The user accounts with their registration.
    assert "user0" in page and "user1" in page
    for user in mac.user_accounts.all():
        assert user.entra_user_id in page
    # The history, per user.
    assert "macOS Intune Integration Logs" in page and page.count("Completed") >= 2
    assert page.count("<h3") >= 2


def test_buttons_for_operators_only(client, intune_tenant, viewer_a, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    client.force_login(viewer_a)
    assert "/intune/" not in client.get(change_url(mac)).content.decode()
    client.force_login(operator_a)
    page = client.get(change_url(mac)).content.decode()
    for action in ("resend", "retire", "delete"):
        assert 'href="%s"' % action_url(mac, action) in page
    assert "Re-send to Intune" in page and "Delete from Entra ID and Intune" in page


def test_resend_button_confirms_then_sends(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    client.force_login(operator_a)
    page = client.get(action_url(mac, "resend")).content.decode()
    assert "Yes, I" in page and str(mac) in page and 'href="%s"' % change_url(mac) in page  # cancel: back to it
    assert ComplianceReport.objects.count() == 1
    response = client.post(action_url(mac, "resend"), {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == change_url(mac)
    new = ComplianceReport.objects.latest("id")
    assert (new.status, new.reason, new.requested_by) == (Status.PENDING, "resend", operator_a.username)
    drain(intune_tenant)
    assert statuses(intune_tenant) == {Status.COMPLETED: 2}


def test_retire_button(client, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    client.force_login(operator_a)
    assert "Retire these Macs?" in client.get(action_url(mac, "retire")).content.decode()
    mac.refresh_from_db()
    assert mac.retired_at is None  # the GET changed nothing
    client.post(action_url(mac, "retire"), {"post": "yes"})
    mac.refresh_from_db()
    assert mac.retired_at is not None and mac.inventory_state == 1
    assert ComplianceReport.objects.get(computer=mac).payload[0]["State"] == 1


def test_delete_button_calls_graph(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    device_id = Computer.objects.get(pk=mac.pk).entra_device_id
    sim_tenant = microsoft(simulator).tenant(intune_tenant.entra_tenant)
    client.force_login(operator_a)
    response = client.post(action_url(mac, "delete"), {"post": "yes"}, follow=True)
    assert device_id not in sim_tenant.entra_devices
    assert ComplianceReport.objects.get(kind=ComplianceReport.Kind.DELETE).status == Status.COMPLETED
    assert "Deleted by an operator" in response.content.decode()


def test_buttons_are_scoped_and_need_an_operator(client, intune_tenant, viewer_a, tenant_b):
    mac, = registered_macs(intune_tenant, 1)
    client.force_login(viewer_a)
    assert client.get(action_url(mac, "resend")).status_code == 403
    assert client.post(action_url(mac, "retire"), {"post": "yes"}).status_code == 403
    client.force_login(member(tenant_b, "operator", username="bravo-op"))
    assert client.get(action_url(mac, "resend")).status_code == 404
    assert client.post(action_url(mac, "retire"), {"post": "yes"}).status_code == 404
    client.force_login(member(intune_tenant, "operator", username="alpha-op"))
    assert client.get(action_url(mac, "explode")).status_code == 404
    assert client.put(action_url(mac, "retire")).status_code == 405
    mac.refresh_from_db()
    assert mac.retired_at is None and not ComplianceReport.objects.exists()
