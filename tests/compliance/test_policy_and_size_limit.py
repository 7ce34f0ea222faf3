"""Provisioning finds a renamed partner policy, and a 413 is split like a 400 (issue 12, items 10 and 11).

Both over real HTTPS against the simulated Intune: an Intune admin may rename the partner-managed macOS
policy, after which the portal's POST answers 409 and the policy must be found whatever its name; a front
end refusing a large DataUploadMessage (413) makes the portal split the message until each part fits, and a
single report still too large fails at once with a clear reason instead of being retried forever.
"""

import json
import uuid

import pytest

from compliance.delivery import content_of, deliver_tenant
from compliance.intune.payloads import upload_body
from compliance.models import ComplianceReport
from compliance.outbox import queue_reports
from compliance.sync import provision
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import registered_macs, statuses

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


@pytest.fixture
def tenant(intune_tenant):
    return intune_tenant


def test_provisioning_finds_the_partner_policy_whatever_its_name(simulator, tenant):
    service = microsoft(simulator)
    service.add_policy(tenant.entra_tenant, "Windows baseline", platform="windows10", partner_managed=False)
    renamed = service.add_policy(tenant.entra_tenant, "Macs managed by our MSP (renamed in Intune)")
    group = str(uuid.uuid4())
    type(tenant).objects.filter(pk=tenant.pk).update(partner_policy_group_ids=[group])

    counters = provision(tenant.pk)

    assert (counters["policy"], counters["policy_created"], counters["groups"]) == (renamed["Id"], 0, 1)
    assert simulator.counts["route:intune_policy_create"] == 1  # the POST was answered 409
    policies = service.tenant(tenant.entra_tenant).policies
    assert len(policies) == 2 and policies[renamed["Id"]]["Assignments"] == [group]


def body_size(tenant, rows):
    """The size of the PUT body the client sends for these rows (requests' json= encoding)."""
    content = content_of(json.dumps(row.payload) for row in rows)
    return len(json.dumps(upload_body(tenant.entra_tenant_id, content, rows[0].created_at)).encode())


def test_a_413_splits_the_message_until_each_part_fits(simulator, tenant, settings):
    settings.INTUNE_BATCH_SIZE = 4
    registered_macs(tenant, 4)
    queue_reports(tenant.pk)
    rows = list(ComplianceReport.objects.filter(tenant=tenant).order_by("id"))
    one = body_size(tenant, rows[:1])
    assert body_size(tenant, rows[:2]) > one * 1.5
    simulator.set_faults(max_upload_bytes=int(one * 1.5))  # one report fits, two do not

    result = deliver_tenant(tenant.pk)

    assert statuses(tenant) == {Status.ACCEPTED: 4}
    assert result.counters["accepted"] == 4 and result.counters["split"] == 3  # 4 -> 2 + 2 -> 1 + 1 + 1 + 1
    outcomes = [outcome for _, _, outcome in microsoft(simulator).uploads]
    assert outcomes.count(413) == 3 and outcomes.count(202) == 4
    assert len({row.message_id for row in ComplianceReport.objects.filter(tenant=tenant)}) == 4


def test_a_single_report_too_large_fails_at_once_with_a_clear_reason(simulator, tenant, settings):
    settings.INTUNE_BATCH_SIZE = 2
    registered_macs(tenant, 2)
    queue_reports(tenant.pk)
    simulator.set_faults(max_upload_bytes=200)  # no report fits

    result = deliver_tenant(tenant.pk)

    assert result.counters["failed"] == 2 and not result.stopped
    assert statuses(tenant) == {Status.FAILED: 2}
    for row in ComplianceReport.objects.filter(tenant=tenant):
        assert row.attempts == 1 and row.next_attempt_at is None
        assert row.error_code == "RequestEntityTooLarge"
        assert row.error_detail.startswith("Not sent: this report alone is larger than Intune accepts in one message")
        assert "at most 200 bytes are accepted" in row.error_detail
    assert deliver_tenant(tenant.pk).counters["claimed"] == 0  # nothing left to retry
