"""Reports reach Intune well formed (issue 12, items 8, 9 and 12), checked on the real upload path.

A registered Mac is sent with Os "macOS", a DeviceName that is never empty and a LastCheckInTime that falls
back to Jamf's report date; a Mac for which Jamf Pro gave no date at all, or no macOS version, is held back
with its reason on the computer's page. The body the client PUTs is the one ``payloads.upload_body`` builds.
"""

import datetime
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from compliance.delivery import deliver_tenant, message_entities
from compliance.intune.payloads import HOLD_REASONS, entities_for, upload_body
from compliance.models import ComplianceReport
from compliance.outbox import queue_reports
from compliance.sync import evaluate_and_queue
from devices.models import Computer
from portal.models import ReportingMode, SyncRun, Tenant
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import registered_macs, statuses

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


@pytest.fixture
def tenant(intune_tenant):
    return intune_tenant


def sent_inventory(simulator, tenant, mac):
    """The EntityType 1 record the simulated Intune holds for the Mac's (only) user."""
    mac = Computer.objects.get(pk=mac.pk)
    (record,) = microsoft(simulator).device(tenant.entra_tenant, mac.entra_device_id).values()
    return record["inventory"]


def test_an_old_mac_without_a_check_in_is_sent_macos_and_its_report_date(simulator, tenant):
    reported = timezone.now() - datetime.timedelta(hours=3)
    mac, = registered_macs(tenant, 1)
    Computer.objects.filter(pk=mac.pk).update(os_name="Mac OS X", os_version="10.13.6", last_check_in=None,
                                              last_inventory_update=reported)
    queue_reports(tenant.pk)

    result = deliver_tenant(tenant.pk)

    assert result.counters["accepted"] == 1 and statuses(tenant) == {Status.ACCEPTED: 1}
    inventory = sent_inventory(simulator, tenant, mac)
    assert inventory["Os"] == "macOS"
    assert inventory["OsVersion"] == "10.13.6"
    assert inventory["LastCheckInTime"] == reported.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("change", "code"), [
    ({"last_check_in": None, "last_inventory_update": None}, "no_contact"),
    ({"os_version": ""}, "no_os_version"),
])
def test_a_mac_without_a_date_or_an_os_version_is_held_back_with_its_reason(simulator, tenant, client, msp_user,
                                                                             change, code):
    held, fine = registered_macs(tenant, 2)
    Computer.objects.filter(pk=held.pk).update(**change)

    counters = evaluate_and_queue(tenant.pk)  # the evaluate task: its SyncRun keeps the counters
    deliver_tenant(tenant.pk)

    assert counters["reports_held_%s" % code] == 1
    assert SyncRun.objects.get(kind=SyncRun.Kind.EVALUATE).counters["reports_held_%s" % code] == 1
    assert list(ComplianceReport.objects.values_list("computer_id", "status")) == [(fine.pk, Status.ACCEPTED)]
    assert microsoft(simulator).uploads and all(outcome == 202 for _, _, outcome in microsoft(simulator).uploads)

    client.force_login(msp_user)
    page = client.get(reverse("admin:devices_computer_change", args=[held.pk])).content.decode()
    assert "Held back from Intune:" in page and escape(HOLD_REASONS[code]) in page
    page = client.get(reverse("admin:devices_computer_change", args=[fine.pk])).content.decode()
    assert "Held back from Intune:" not in page


def test_legacy_inventory_mode_names_an_unnamed_mac_by_its_serial_number(simulator, tenant):
    Tenant.objects.filter(pk=tenant.pk).update(reporting_mode=ReportingMode.INVENTORY)
    mac, = registered_macs(tenant, 1)
    Computer.objects.filter(pk=mac.pk).update(name="")
    mac.refresh_from_db()
    queue_reports(tenant.pk)

    deliver_tenant(tenant.pk)

    inventory = sent_inventory(simulator, tenant, mac)
    assert inventory["DeviceName"] == mac.serial_number != ""
    assert "SerialNumber" in inventory  # the legacy attribute set was sent


def test_pure_entities_never_carry_empty_values():
    computer = Computer(name="", serial_number="C02XYZ", udid="u-1", os_name="Mac OS X", os_version="10.12.6",
                        last_check_in=None, last_inventory_update=datetime.datetime(2024, 1, 2, 3, 4, 5,
                                                                                    tzinfo=datetime.UTC))
    from devices.models import UserAccount

    user = UserAccount(entra_user_id="u", entra_device_id="d")
    for inventory_mode in (False, True):
        device = entities_for("t", computer, user, 2, "notCompliant", timezone.now(), inventory_mode)[0]
        assert (device["Os"], device["DeviceName"], device["LastCheckInTime"]) == (
            "macOS", "C02XYZ", "2024-01-02T03:04:05Z")


def test_the_real_upload_sends_the_body_upload_body_builds(simulator, tenant, settings):
    settings.INTUNE_BATCH_SIZE = 3
    registered_macs(tenant, 5)
    queue_reports(tenant.pk)

    deliver_tenant(tenant.pk)

    service = microsoft(simulator)
    rows = ComplianceReport.objects.filter(tenant=tenant).order_by("id")
    messages = {row.message_id: row.batched_at for row in rows}
    assert len(messages) == 2
    for message_id, batched_at in messages.items():
        expected = upload_body(tenant.entra_tenant_id, message_entities(message_id), batched_at)
        received = service.messages[str(message_id)]
        assert received["UploadTime"] == expected["UploadTime"]
        assert received["ContentDigest"] == hashlib.sha256(expected["Content"].encode()).hexdigest()
        # microseconds, always six digits: the stored batch time, exactly
        assert expected["UploadTime"] == batched_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
