"""The admin of the reports to Intune: a computer's history per user, the operator actions, tenant health."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from compliance.models import ComplianceReport
from compliance.outbox import queue_reports
from devices.models import Computer
from portal.models import SyncRun
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import drain, registered_macs, statuses
from tests.conftest import member

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


def post_action(client, url, action, pks, confirm=False):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks]}
    if confirm:
        data["post"] = "yes"
    return client.post(url, data)


def test_computer_page_shows_the_history_per_user(client, simulator, intune_tenant, admin_a):
    mac, = registered_macs(intune_tenant, 1, users=2)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    client.force_login(admin_a)

    page = client.get("/admin/devices/computer/%d/change/" % mac.pk).content.decode()

    assert "macOS Intune Integration Logs" in page
    for row in ComplianceReport.objects.filter(computer=mac):
        assert row.entra_user_id in page and str(row.message_id) in page
    assert page.count("Completed") >= 2 and "user0" in page and "user1" in page
    report = ComplianceReport.objects.filter(computer=mac).first()
    detail = client.get("/admin/compliance/compliancereport/%d/change/" % report.pk).content.decode()
    assert "Payload as sent" in detail and "&quot;EntityType&quot;: 4" in detail
    listing = client.get("/admin/compliance/compliancereport/?computer=%d" % mac.pk)
    assert listing.status_code == 200 and listing.content.decode().count("user0") >= 1


def test_viewer_sees_but_cannot_act_and_other_tenants_stay_hidden(client, intune_tenant, viewer_a, tenant_b):
    mac, = registered_macs(intune_tenant, 1)
    other = registered_macs(tenant_b, 1)[0]
    queue_reports(intune_tenant.pk)
    client.force_login(viewer_a)
    listing = client.get("/admin/devices/computer/").content.decode()
    assert "retire_in_intune" not in listing and "resend_to_intune" not in listing
    response = post_action(client, "/admin/devices/computer/", "resend_to_intune", [mac.pk], confirm=True)
    assert ComplianceReport.objects.count() == 1  # nothing new
    assert response.status_code in (200, 302)
    assert client.get("/admin/compliance/compliancereport/").status_code == 200
    assert client.get("/admin/devices/computer/%d/change/" % other.pk).status_code == 302


def test_operator_resends_after_a_confirmation_page(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    client.force_login(operator_a)

    page = post_action(client, "/admin/devices/computer/", "resend_to_intune", [mac.pk])
    assert page.status_code == 200 and "Yes, I" in page.content.decode() and ComplianceReport.objects.count() == 1

    response = post_action(client, "/admin/devices/computer/", "resend_to_intune", [mac.pk], confirm=True)
    assert response.status_code == 302
    new = ComplianceReport.objects.latest("id")
    assert (new.status, new.reason, new.requested_by) == (Status.PENDING, "resend", operator_a.username)
    drain(intune_tenant)
    assert statuses(intune_tenant) == {Status.COMPLETED: 2}


def test_operator_retires_and_the_report_says_state_one(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    client.force_login(operator_a)
    post_action(client, "/admin/devices/computer/", "retire_in_intune", [mac.pk], confirm=True)
    mac.refresh_from_db()
    assert mac.retired_at is not None and not mac.managed and mac.inventory_state == 1
    row = ComplianceReport.objects.get(computer=mac)
    assert (row.reason, row.payload[0]["State"], row.requested_by) == ("retire", 1, operator_a.username)


def test_delete_from_entra_and_intune_calls_graph_and_is_recorded(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    device_id = Computer.objects.get(pk=mac.pk).entra_device_id
    sim_tenant = microsoft(simulator).tenant(intune_tenant.entra_tenant)
    assert device_id in sim_tenant.entra_devices
    client.force_login(operator_a)

    response = post_action(client, "/admin/devices/computer/", "delete_in_entra_and_intune", [mac.pk], confirm=True)

    assert response.status_code == 302
    assert device_id not in sim_tenant.entra_devices and device_id in sim_tenant.deleted_managed
    row = ComplianceReport.objects.filter(kind=ComplianceReport.Kind.DELETE).get()
    assert (row.status, row.entra_device_id, row.payload["entra"], row.payload["intune"], row.latest) == (
        Status.COMPLETED, device_id, "deleted", "deleted", True)
    assert queue_reports(intune_tenant.pk, force=False).created == 0  # not reported again until it re-registers
    page = client.get("/admin/devices/computer/%d/change/" % mac.pk).content.decode()
    assert "Deleted by an operator" in page and "entra: deleted" in page


def test_failed_report_resend_from_the_report_list(client, simulator, intune_tenant, operator_a):
    registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    ComplianceReport.objects.update(status=Status.FAILED, error_code="ServiceUnavailable")
    client.force_login(operator_a)
    report = ComplianceReport.objects.get()
    page = post_action(client, "/admin/compliance/compliancereport/", "resend_selected", [report.pk])
    assert "Yes, I" in page.content.decode()
    post_action(client, "/admin/compliance/compliancereport/", "resend_selected", [report.pk], confirm=True)
    assert statuses(intune_tenant) == {Status.FAILED: 1, Status.PENDING: 1}


def test_tenant_health_and_sync_runs(client, simulator, intune_tenant, admin_a):
    registered_macs(intune_tenant, 3)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    registered_macs(intune_tenant, 2)
    queue_reports(intune_tenant.pk)
    ComplianceReport.objects.filter(status=Status.PENDING).update(created_at=timezone.now() - timezone.timedelta(
        minutes=42))
    SyncRun.objects.create(tenant=intune_tenant, kind=SyncRun.Kind.DELIVER, started_at=timezone.now(),
                           status=SyncRun.Status.FAILED, error="Microsoft's service answered with a server error.")
    client.force_login(admin_a)

    page = client.get("/admin/portal/tenant/%d/change/" % intune_tenant.pk).content.decode()

    assert "Last successful delivery" in page and "Pending reports" in page
    assert ">2</a>" in page and "42 min" in page
    runs = client.get("/admin/portal/syncrun/").content.decode()
    assert "answered with a server error" in runs


def test_operator_role_is_needed_in_that_tenant(client, simulator, intune_tenant, tenant_b):
    mac, = registered_macs(intune_tenant, 1)
    outsider = member(tenant_b, "operator", username="bravo-op")
    client.force_login(outsider)
    post_action(client, "/admin/devices/computer/", "retire_in_intune", [mac.pk], confirm=True)
    mac.refresh_from_db()
    assert mac.retired_at is None and not ComplianceReport.objects.exists()
