"""The tenant page's buttons: who sees which, GET confirms and POST (with CSRF) acts, and what each does."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ

from portal.models import SyncRun, Tenant
from tests.compliance.intune_helpers import connect, microsoft
from tests.conftest import member

pytestmark = pytest.mark.django_db

TOOLS_RE = re.compile(r'<ul class="object-tools">(.*?)</ul>', re.S)
TOOL_RE = re.compile(r'<li class="tool-([a-z_]+)(?: tools-[a-z]+)?">')


def tools_of(client, tenant):
    response = client.get(reverse("admin:portal_tenant_change", args=[tenant.pk]))
    assert response.status_code == 200
    areas = TOOLS_RE.findall(response.content.decode())
    assert len(areas) == 1, "every button sits in one object-tools area"
    return TOOL_RE.findall(areas[0]), areas[0]


def queued():
    return [row.task["func"] for row in OrmQ.objects.order_by("id")]


def url(name, tenant):
    return reverse("admin:portal_tenant_%s" % name, args=[tenant.pk])


@pytest.mark.parametrize(
    "role, expected",
    [
        ("viewer", ["jamf_webhooks", "preview"]),
        ("operator", ["test_connection", "sync_now", "jamf_webhooks", "preview"]),
        ("admin", ["test_connection", "sync_now", "provision", "deprovision", "consent", "jamf_webhooks", "preview"]),
    ],
)
def test_buttons_follow_the_role(client, tenant_a, role, expected):
    client.force_login(member(tenant_a, role))
    keys, area = tools_of(client, tenant_a)
    assert keys == expected
    # Django's history, named for what it is: the portal's change log (not the Intune history).
    assert "Change log" in area and "History" not in area


def test_msp_staff_get_every_button(client, msp_user, tenant_a):
    client.force_login(msp_user)
    keys, area = tools_of(client, tenant_a)
    assert keys == ["test_connection", "sync_now", "provision", "deprovision", "consent", "jamf_webhooks", "preview"]
    assert '/adminconsent?client_id=%s' % tenant_a.client_id in area
    assert 'href="/r/alpha/preview/registration/"' in area and 'target="_blank"' in area


def test_unconfigured_tenant_has_no_provisioning_buttons(client, msp_user):
    tenant = Tenant.objects.create(name="New", slug="new")
    client.force_login(msp_user)
    keys, _area = tools_of(client, tenant)
    assert keys == ["test_connection", "sync_now", "jamf_webhooks", "preview"]


def test_preview_button_follows_the_landing_choice(client, msp_user, tenant_a):
    client.force_login(msp_user)
    Tenant.objects.filter(pk=tenant_a.pk).update(landing_page="access_denied")
    assert 'href="/r/alpha/preview/access-denied/"' in tools_of(client, tenant_a)[1]
    Tenant.objects.filter(pk=tenant_a.pk).update(landing_page="custom", landing_custom_url="https://help.alpha.example/")
    assert 'href="https://help.alpha.example/"' in tools_of(client, tenant_a)[1]
    page = client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    for kind in ("registration", "registration-enrolled", "access-denied", "remediation"):
        assert 'href="/r/alpha/preview/%s/"' % kind in page  # every kind, in the landing-page fieldset
    assert "/r/alpha/remediation/" in page  # the URL registered with Intune


# -- Sync now -----------------------------------------------------------------------------------


def test_sync_now_confirms_then_queues_on_post(client, operator_a, tenant_a):
    client.force_login(operator_a)
    page = client.get(url("sync_now", tenant_a))
    assert page.status_code == 200 and not OrmQ.objects.exists()
    text = page.content.decode()
    assert "No Jamf Pro API credentials" in text and 'method="post"' in text and "csrfmiddlewaretoken" in text
    response = client.post(url("sync_now", tenant_a))
    assert response.status_code == 302 and response["Location"] == url("change", tenant_a)
    assert queued() == ["compliance.tasks.sync_now_task"]
    assert "Sync of Alpha queued." in client.get(response["Location"]).content.decode()


def test_sync_now_needs_an_operator_of_the_tenant(client, viewer_a, admin_b, tenant_a):
    client.force_login(viewer_a)
    assert client.get(url("sync_now", tenant_a)).status_code == 403
    assert client.post(url("sync_now", tenant_a)).status_code == 403
    client.force_login(admin_b)
    assert client.get(url("sync_now", tenant_a)).status_code == 404
    assert client.post(url("sync_now", tenant_a)).status_code == 404
    assert not OrmQ.objects.exists()


def test_buttons_refuse_other_methods_and_a_post_without_csrf(operator_a, admin_a, tenant_a):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_a)
    for name in ("sync_now", "provision", "deprovision", "jamf_webhooks"):
        assert csrf_client.post(url(name, tenant_a)).status_code == 403, name
        assert csrf_client.put(url(name, tenant_a)).status_code in (403, 405), name
        assert csrf_client.delete(url(name, tenant_a)).status_code in (403, 405), name
    plain = Client()
    plain.force_login(admin_a)
    assert plain.put(url("sync_now", tenant_a)).status_code == 405
    assert not OrmQ.objects.exists()
    tenant_a.refresh_from_db()
    assert tenant_a.intune_enabled is False and tenant_a.webhook_secret == ""


def test_sync_now_task_pulls_evaluates_and_delivers(simulator, jamf, tenant_a):
    from compliance.tasks import sync_now_task
    from tests.devices.jamf_helpers import connect as connect_jamf

    connect(simulator, tenant_a)
    connect_jamf(tenant_a, simulator, count=5)
    Tenant.objects.filter(pk=tenant_a.pk).update(intune_enabled=True)
    counters = sync_now_task(tenant_a.pk)
    assert counters["jamf_pull"]["fetched"] == 5 and counters["jamf_pull"]["created"] == 5
    assert counters["evaluate"]["computers"] == 5
    assert tenant_a.computers.count() == 5 and not tenant_a.computers.filter(evaluated_at__isnull=True).exists()
    kinds = set(SyncRun.objects.filter(tenant=tenant_a).values_list("kind", flat=True))
    assert {"jamf_pull", "evaluate"} <= kinds
    assert queued() == ["compliance.tasks.deliver_task"]


# -- Provision and Deprovision ---------------------------------------------------------------------


def test_provision_enables_and_provisions_in_intune(client, simulator, admin_a, tenant_a, settings,
                                                   django_capture_on_commit_callbacks):
    from compliance.tasks import provision_task

    settings.PORTAL_BASE_URL = "https://portal.example.com"
    sim_tenant = connect(simulator, tenant_a)
    client.force_login(admin_a)
    page = client.get(url("provision", tenant_a)).content.decode()
    assert "Enable the Intune integration" in page and "https://portal.example.com/r/alpha/" in page
    assert not OrmQ.objects.exists()
    assert sim_tenant.partner.get("Provisioned") is None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("provision", tenant_a))
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.intune_enabled is True
    assert queued() == ["compliance.tasks.provision_task"]  # by the intune_enabled signal, once committed
    provision_task(tenant_a.pk)
    assert sim_tenant.partner["Provisioned"] == 1
    assert sim_tenant.partner["PartnerEnrollmentUrl"] == "https://portal.example.com/r/alpha/"
    assert SyncRun.objects.get(tenant=tenant_a, kind="provision").status == "succeeded"

    # Again, with the integration already on: the provisioning runs again (safe to repeat).
    client.post(url("provision", tenant_a))
    assert queued() == ["compliance.tasks.provision_task"] * 2


def test_deprovision_disables_and_deprovisions(client, simulator, msp_user, tenant_a,
                                               django_capture_on_commit_callbacks):
    from compliance.tasks import provision_task

    sim_tenant = connect(simulator, tenant_a)
    Tenant.objects.filter(pk=tenant_a.pk).update(intune_enabled=True)
    provision_task(tenant_a.pk)
    assert sim_tenant.partner["Provisioned"] == 1
    client.force_login(msp_user)
    assert "Disable the Intune integration" in client.get(url("deprovision", tenant_a)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("deprovision", tenant_a), follow=True)
    assert "Deprovisioning of Alpha queued." in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.intune_enabled is False
    assert queued() == ["compliance.tasks.provision_task"]
    provision_task(tenant_a.pk)
    assert sim_tenant.partner["Provisioned"] == 2
    assert microsoft(simulator).tenant(tenant_a.entra_tenant).partner["Provisioned"] == 2


def test_provisioning_needs_a_tenant_admin(client, operator_a, admin_b, tenant_a):
    client.force_login(operator_a)
    for name in ("provision", "deprovision"):
        assert client.get(url(name, tenant_a)).status_code == 403
        assert client.post(url(name, tenant_a)).status_code == 403
    client.force_login(admin_b)
    assert client.post(url("provision", tenant_a)).status_code == 404
    tenant_a.refresh_from_db()
    assert tenant_a.intune_enabled is False and not OrmQ.objects.exists()


def test_provision_refuses_an_inactive_or_unconfigured_tenant(client, msp_user, tenant_a):
    client.force_login(msp_user)
    Tenant.objects.filter(pk=tenant_a.pk).update(is_active=False)
    response = client.post(url("provision", tenant_a), follow=True)
    assert "The tenant is inactive: activate it first." in response.content.decode()
    Tenant.objects.filter(pk=tenant_a.pk).update(is_active=True, client_id="")
    response = client.post(url("provision", tenant_a), follow=True)
    assert "Set the Entra tenant first (and the partner application" in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.intune_enabled is False and not OrmQ.objects.exists()


# -- Jamf webhooks ------------------------------------------------------------------------------------


def test_webhook_setup_page_and_a_new_secret_shown_once(client, admin_a, viewer_a, tenant_a):
    client.force_login(viewer_a)
    page = client.get(url("jamf_webhooks", tenant_a)).content.decode()
    assert "/hooks/jamf/alpha/" in page and "Generate the secret" not in page
    assert client.post(url("jamf_webhooks", tenant_a)).status_code == 403

    client.force_login(admin_a)
    assert "Generate the secret" in client.get(url("jamf_webhooks", tenant_a)).content.decode()
    response = client.post(url("jamf_webhooks", tenant_a), follow=True)
    tenant_a.refresh_from_db()
    secret = tenant_a.webhook_secret
    assert secret and secret in response.content.decode()  # once, in the message after the POST
    again = client.get(url("jamf_webhooks", tenant_a)).content.decode()
    assert secret not in again and "Generate a new secret" in again


def test_test_connection_is_one_click(client, tenant_a, operator_a):
    """The button POSTs straight to the test (with the CSRF token): no second page with a second button."""
    client.force_login(operator_a)
    _keys, area = tools_of(client, tenant_a)
    form = re.search(r'<li class="tool-test_connection[^"]*"><form method="post" action="([^"]+)">(.*?)</form>', area,
                     re.S)
    assert form and form.group(1) == url("test_connection", tenant_a)
    assert 'name="csrfmiddlewaretoken"' in form.group(2) and '<button type="submit"' in form.group(2)


def test_connection_test_breadcrumbs_name_the_tenant(client, tenant_a, operator_a):
    client.force_login(operator_a)
    page = client.get(url("test_connection", tenant_a)).content.decode()
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S).group(1)
    assert 'href="%s">%s</a>' % (reverse("admin:portal_tenant_change", args=[tenant_a.pk]), tenant_a.name) in crumbs
    assert crumbs.index(tenant_a.name) < crumbs.index("Connection test")


def test_application_id_box_fits_a_guid_and_groups_are_one_per_line(client, msp_user, tenant_a):
    group = "5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    Tenant.objects.filter(pk=tenant_a.pk).update(partner_policy_group_ids=[group])
    client.force_login(msp_user)
    page = client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    client_id = re.search(r'<input[^>]*name="client_id"[^>]*>', page).group(0)
    assert 'class="guid-input"' in client_id and 'size="38"' in client_id
    groups = re.search(r'<textarea[^>]*name="partner_policy_group_ids"[^>]*>(.*?)</textarea>', page, re.S)
    assert groups and groups.group(1).strip() == group and "[" not in groups.group(1)
    assert "one per line" in page


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("", []),
        ("5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b\n 6c2f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b ",
         ["5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b", "6c2f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"]),
        ('["5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"]', ["5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"]),
    ],
)
def test_group_ids_field_reads_lines_and_json(typed, stored):
    from portal.admin import GroupIdListField

    assert GroupIdListField(required=False).clean(typed) == stored


def test_group_ids_field_names_what_is_not_a_guid():
    from django.core.exceptions import ValidationError

    from portal.admin import GroupIdListField

    with pytest.raises(ValidationError) as caught:
        GroupIdListField(required=False).clean("5b1f8a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b\nMac users")
    assert "Mac" in str(caught.value) and "users" in str(caught.value)


def test_field_labels_are_capitalised_evenly(client, msp_user, tenant_a):
    client.force_login(msp_user)
    page = client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    for right in ("Jamf Pro API version", "Logo URL", "Partner policy group IDs"):
        assert right in page
    for wrong in ("Jamf api version", "Logo url", "Partner policy group ids"):
        assert wrong not in page
