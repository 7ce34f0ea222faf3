"""A report never pairs new inventory with stale compliance (issue 14, item 5).

The repro: a registered Mac under a policy "macOS 15.0 or later", reported and accepted; a webhook summary sets
OS 14.8.1; reports are queued by another process at the first moment the change is visible to it, i.e. right
after the change commits. Before, ``apply_summary`` committed the inventory and only then evaluated the Mac, so
that report said OsVersion 14.8.1 and ``compliant``. Now the evaluation commits with the change.
"""

import uuid

import pytest
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from compliance.evaluation import evaluate_tenant
from compliance.models import CompliancePolicy, ComplianceReport
from compliance.outbox import queue_reports
from devices.importer import apply_summary, import_records, record_check_ins
from devices.models import Computer
from devices.signals import computers_changed
from portal.models import Tenant
from tests.compliance.sync_helpers import registered_macs
from tests.factories import TenantFactory

Status = ComplianceReport.Status


@pytest.fixture
def reported_mac(transactional_db):
    tenant = TenantFactory(slug="consistency")
    Tenant.objects.filter(pk=tenant.pk).update(intune_enabled=True, entra_tenant_id=uuid.uuid4())
    CompliancePolicy.objects.create(tenant=tenant, name="macOS 15", min_os_version="15.0")
    mac, = registered_macs(tenant, 1, os_version="15.1")
    assert queue_reports(tenant.pk).created == 1
    ComplianceReport.objects.update(status=Status.ACCEPTED, message_id=uuid.uuid4(), sent_at=timezone.now())
    return tenant, Computer.objects.get(pk=mac.pk)


class QueueRightAfterCommit:
    """Queue reports the moment a Computer write commits: the earliest point another process could see it.

    Hooked on the Computer's post_save (which the summary path sends) and on devices' announcement (the batch
    and check-in paths write with bulk queries): either registers an on_commit callback inside the writer's
    transaction, which runs as soon as it commits.
    """

    def __init__(self, tenant):
        self.tenant = tenant
        self.results = []

    def _written(self, sender, **kwargs):
        transaction.on_commit(lambda: self.results.append(queue_reports(self.tenant.pk)))

    def __enter__(self):
        post_save.connect(self._written, sender=Computer, dispatch_uid="test-consistency")
        computers_changed.connect(self._written, dispatch_uid="test-consistency")
        return self

    def __exit__(self, *exc):
        post_save.disconnect(sender=Computer, dispatch_uid="test-consistency")
        computers_changed.disconnect(dispatch_uid="test-consistency")


def _the_new_report(tenant):
    report = ComplianceReport.objects.get(tenant=tenant, latest=True)
    device, verdict = report.payload
    return device["OsVersion"], verdict["complianceStatus"], report.compliance_status


def test_a_webhook_summary_and_its_evaluation_commit_together(reported_mac):
    tenant, mac = reported_mac
    with QueueRightAfterCommit(tenant) as queued:
        outcome, _, _ = apply_summary(tenant, {"os_version": "14.8.1"}, timezone.now(), jamf_id=mac.jamf_id)

    assert outcome == "updated" and queued.results and queued.results[0].created == 1
    assert _the_new_report(tenant) == ("14.8.1", "notCompliant", "notCompliant")


def test_an_imported_record_and_its_evaluation_commit_together(reported_mac):
    """The same through the batch importer: its transaction holds the upsert and the evaluation."""
    tenant, mac = reported_mac
    record = {"id": mac.jamf_id, "udid": mac.udid, "operatingSystem": {"version": "14.8.1"},
              "general": {"name": mac.name, "reportDate": timezone.now().isoformat()}}
    with QueueRightAfterCommit(tenant) as queued:
        result = import_records(tenant, [record])

    assert result.updated == 1 and queued.results and queued.results[0].created == 1
    assert _the_new_report(tenant)[1:] == ("notCompliant", "notCompliant")


def test_a_check_in_and_its_evaluation_commit_together(reported_mac):
    """A Mac that was unresponsive is activated by a check-in: state and check-in commit together."""
    tenant, mac = reported_mac
    old = timezone.now() - timezone.timedelta(days=3)
    Computer.objects.filter(pk=mac.pk).update(last_check_in=old)
    evaluate_tenant(tenant.pk)
    assert Computer.objects.get(pk=mac.pk).inventory_state == 2
    queue_reports(tenant.pk)
    ComplianceReport.objects.filter(latest=True).update(status=Status.ACCEPTED, message_id=uuid.uuid4())
    with QueueRightAfterCommit(tenant) as queued:
        record_check_ins(tenant, [(mac.jamf_id, timezone.now())])

    assert queued.results and queued.results[0].created == 1
    report = ComplianceReport.objects.get(tenant=tenant, latest=True)
    assert report.inventory_state == 0 and report.payload[0]["State"] == 0
