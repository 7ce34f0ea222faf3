"""Delivery of the outbox to the simulated Intune over real HTTPS, and the status read-back."""

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from compliance.delivery import (
    backoff_seconds,
    claim,
    claim_after,
    deliver_tenant,
    landing_urls,
    poll_status,
    release_expired_leases,
)
from compliance.models import ComplianceReport, OutboxMessage
from compliance.outbox import queue_reports
from compliance.sync import deliver, poll, provision, retire, tenant_health
from devices.models import Computer
from portal.models import SyncRun
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import drain, registered_macs, statuses

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


@pytest.fixture
def tenant(intune_tenant):
    return intune_tenant


def test_reports_are_batched_put_accepted_and_completed(simulator, tenant):
    registered_macs(tenant, 12)  # batch size 5: three messages
    queue_reports(tenant.pk)

    result = deliver_tenant(tenant.pk)

    assert (result.counters["accepted"], result.counters["messages"]) == (12, 3)
    assert statuses(tenant) == {Status.ACCEPTED: 12}
    rows = list(ComplianceReport.objects.filter(tenant=tenant))
    assert len({r.message_id for r in rows}) == 3 and all(r.sent_at and r.attempts == 1 for r in rows)
    service = microsoft(simulator)
    for row in rows:
        stored = service.device(tenant.entra_tenant, row.entra_device_id)[row.entra_user_id.lower()]
        assert stored["inventory"] == row.payload[0] and stored["compliance"] == row.payload[1]
        assert str(row.message_id) == stored["last_message"]
        message = service.messages[str(row.message_id)]
        assert message["UploadTime"].startswith(row.batched_at.strftime("%Y-%m-%dT%H:%M:%S"))

    counters = poll_status(tenant.pk)
    assert (counters["messages"], counters["completed"]) == (3, 12)
    assert statuses(tenant) == {Status.COMPLETED: 12}


def test_status_poll_marks_intune_processing_failures(simulator, tenant):
    macs = registered_macs(tenant, 2)
    from django.test import override_settings

    with override_settings(INTUNE_BATCH_SIZE=1):  # messages are made with their reports: one per Mac
        queue_reports(tenant.pk)
    bad = Computer.objects.get(pk=macs[0].pk).entra_device_id
    simulator.set_faults(failing_devices={bad: "DeviceNotFound: The device is not registered in Entra ID"})
    deliver_tenant(tenant.pk)
    poll_status(tenant.pk)
    failed = ComplianceReport.objects.get(computer_id=macs[0].pk)
    assert (failed.status, failed.error_code, failed.error_detail) == (
        Status.FAILED, "DeviceNotFound", "The device is not registered in Entra ID")
    assert ComplianceReport.objects.get(computer_id=macs[1].pk).status == Status.COMPLETED


def test_processing_message_is_asked_again_and_unknown_message_is_resent(simulator, tenant):
    registered_macs(tenant, 1)
    queue_reports(tenant.pk)
    simulator.set_faults(processing_delay=30)
    deliver_tenant(tenant.pk)
    assert poll_status(tenant.pk)["processing"] == 1
    assert statuses(tenant) == {Status.ACCEPTED: 1}

    microsoft(simulator).messages.clear()  # Intune lost it: it answers 404 for the ID
    assert poll_status(tenant.pk)["resend"] == 1
    row = ComplianceReport.objects.get()
    message_id = row.message_id
    assert row.status == Status.PENDING
    deliver_tenant(tenant.pk)
    row.refresh_from_db()
    assert (row.status, row.message_id) == (Status.ACCEPTED, message_id)  # the same PUT


def test_reports_are_queued_in_messages_and_a_claim_takes_each_message_once(tenant):
    registered_macs(tenant, 7)  # batch size 5
    queue_reports(tenant.pk)
    messages = {m.id: m for m in OutboxMessage.objects.all()}
    rows = list(ComplianceReport.objects.order_by("id"))
    # The message ID and UploadTime are fixed when the reports are made: 5 and 2 reports.
    assert sorted(len([r for r in rows if r.message_id == mid]) for mid in messages) == [2, 5]
    assert all(r.batched_at == messages[r.message_id].upload_time for r in rows)
    assert all(not m.claimed and m.attempts == 0 for m in messages.values())
    first = claim(tenant.pk, 1)
    second = claim(tenant.pk, 1)
    assert sorted([len(m.row_ids) for m in first + second]) == [2, 5]
    assert not claim(tenant.pk, 1)
    # A claim writes the message rows alone: the reports stay pending, untouched, until Intune answers.
    assert statuses(tenant) == {Status.PENDING: 7}
    assert [(r.updated_at, r.status) for r in ComplianceReport.objects.order_by("id")] == [
        (r.updated_at, r.status) for r in rows]
    assert all(m.claimed and m.lease_expires_at for m in OutboxMessage.objects.all())

    # The worker died: after the lease, the messages are due again, with the same reports.
    OutboxMessage.objects.update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert release_expired_leases(tenant.pk) == 2
    again = claim(tenant.pk, 10)
    assert sorted((m.message_id, m.row_ids, m.entities) for m in again) == sorted(
        (m.message_id, m.row_ids, m.entities) for m in first + second)  # the same body: the same PUT


def test_a_claimed_message_keeps_its_reports_and_an_unclaimed_one_gives_them_up(simulator, tenant):
    macs = registered_macs(tenant, 2)
    from django.test import override_settings

    with override_settings(INTUNE_BATCH_SIZE=1):
        queue_reports(tenant.pk)
    claimed, = claim(tenant.pk, 1)
    kept = ComplianceReport.objects.get(id=claimed.row_ids[0])
    given_up = ComplianceReport.objects.exclude(id=kept.id).get()
    Computer.objects.filter(pk__in=[m.pk for m in macs]).update(name="Renamed")
    result = queue_reports(tenant.pk)
    # The claimed message may have reached Intune: its report stays in it (a resend is the same PUT); the
    # other, never claimed, is superseded by the new report.
    assert (result.created, result.superseded) == (2, 1)
    kept.refresh_from_db()
    given_up.refresh_from_db()
    assert (kept.status, given_up.status) == (Status.PENDING, Status.SUPERSEDED)
    # The emptied message is dropped when it comes up; everything else is delivered.
    OutboxMessage.objects.update(lease_expires_at=None)
    assert deliver_tenant(tenant.pk).counters["accepted"] == 3
    assert statuses(tenant) == {Status.ACCEPTED: 3, Status.SUPERSEDED: 1}
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).count() == 0


def test_a_run_claims_after_its_last_key_and_still_sends_rows_due_before_it(simulator, tenant):
    registered_macs(tenant, 9)
    from django.test import override_settings

    with override_settings(INTUNE_BATCH_SIZE=3):
        queue_reports(tenant.pk)
    ids = sorted(ComplianceReport.objects.values_list("id", flat=True))
    order = [m.id for m in OutboxMessage.objects.order_by("next_attempt_at", "id")]
    first, key = claim_after(tenant.pk, 1)
    assert key[1] == first[0].message_id == order[0]
    # Returned to the outbox (a stopped run), this one sorts before the key: claims after it skip it (on
    # PostgreSQL; SQLite has no such index scan and ignores the key) ...
    OutboxMessage.objects.filter(id=order[0]).update(lease_expires_at=None)
    after, _ = claim_after(tenant.pk, 1, after=key)
    assert after[0].message_id == (order[1] if connection.vendor == "postgresql" else order[0])
    OutboxMessage.objects.update(lease_expires_at=None)

    # ... and a run, which passes its last key on from claim to claim, ends with every row sent all the same.
    result = deliver_tenant(tenant.pk)
    assert result.counters["accepted"] == 9 and statuses(tenant) == {Status.ACCEPTED: 9}
    assert sorted(ComplianceReport.objects.values_list("id", flat=True)) == ids


def test_an_accepted_row_is_cleared_of_its_last_error(simulator, tenant):
    registered_macs(tenant, 2)
    queue_reports(tenant.pk)
    ComplianceReport.objects.update(attempts=1, error_code="server_error", error_detail="503 from Intune")
    deliver_tenant(tenant.pk)
    for row in ComplianceReport.objects.all():
        assert (row.status, row.attempts, row.error_code, row.error_detail) == (Status.ACCEPTED, 2, "", "")
        assert row.next_attempt_at is None
        assert row.sent_at is not None and row.updated_at == row.sent_at and row.message_id is not None


def test_backoff_honours_retry_after_and_grows_with_jitter(settings):
    settings.INTUNE_BACKOFF_BASE = 30
    settings.INTUNE_BACKOFF_MAX = 3600
    assert 12 <= backoff_seconds(3, retry_after=12) <= 13.2
    waits = [backoff_seconds(n) for n in (1, 2, 3, 4)]
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120 and 120 <= waits[3] <= 240
    assert backoff_seconds(30) <= 3600


def test_failed_after_max_attempts_and_an_operator_resend_delivers(simulator, tenant, settings):
    settings.INTUNE_DELIVERY_MAX_ATTEMPTS = 2
    mac, = registered_macs(tenant, 1)
    queue_reports(tenant.pk)
    simulator.set_faults(error_rate=1.0, paths=["/intune/"])
    drain(tenant, rounds=20, poll=False)
    row = ComplianceReport.objects.get()
    assert (row.status, row.attempts, row.error_code) == (Status.FAILED, 2, "ServiceUnavailable")

    simulator.set_faults(error_rate=0.0)
    from compliance.sync import resend

    assert resend(tenant.pk, [mac.pk], requested_by="op").created == 1
    drain(tenant)
    assert statuses(tenant) == {Status.FAILED: 1, Status.COMPLETED: 1}
    assert ComplianceReport.objects.get(status=Status.COMPLETED).requested_by == "op"


def test_deliver_run_is_recorded_and_queues_changes_since_the_last_run(simulator, tenant):
    registered_macs(tenant, 3)
    SyncRun.objects.create(tenant=tenant, kind=SyncRun.Kind.EVALUATE, started_at=timezone.now(),
                           status=SyncRun.Status.SUCCEEDED)
    Computer.objects.filter(tenant=tenant).update(updated_at=timezone.now())

    counters = deliver(tenant.pk)

    assert counters["reports_created"] == 3 and counters["accepted"] == 3 and counters["more"] is False
    run = SyncRun.objects.filter(kind=SyncRun.Kind.DELIVER).get()
    assert (run.status, run.counters["accepted"], run.finished_at is not None) == (SyncRun.Status.SUCCEEDED, 3, True)
    assert poll(tenant.pk)["completed"] == 3
    health = tenant_health([tenant.pk])[tenant.pk]
    assert (health["pending"], health["failed"], health["last_delivery"] is not None) == (0, 0, True)


def test_provisioning_uses_the_portal_landing_urls_and_the_policy_groups(simulator, tenant):
    group = str(uuid.uuid4())
    type(tenant).objects.filter(pk=tenant.pk).update(partner_policy_group_ids=[group])
    counters = provision(tenant.pk)
    sim_tenant = microsoft(simulator).tenant(tenant.entra_tenant)
    enrollment, remediation = landing_urls(tenant)
    assert enrollment == "https://portal.example.com/r/alpha/"
    assert remediation == "https://portal.example.com/r/alpha/remediation/"
    assert sim_tenant.partner["Provisioned"] == 1
    assert (sim_tenant.partner["PartnerEnrollmentUrl"], sim_tenant.partner["PartnerRemediationUrl"]) == (
        enrollment, remediation)
    policy, = sim_tenant.policies.values()
    assert policy["Assignments"] == [group] and counters["policy_created"] == 1
    assert provision(tenant.pk)["policy_created"] == 0  # twice is fine: the policy is found by name


def test_disabling_deprovisions_cancels_unsent_reports_and_keeps_the_configuration(simulator, tenant):
    registered_macs(tenant, 2)
    queue_reports(tenant.pk)
    provision(tenant.pk)
    tenant.refresh_from_db()
    tenant.intune_enabled = False
    tenant.save()  # the signal queues the provisioning task; run its body here
    counters = provision(tenant.pk)

    assert counters == {"deprovisioned": 1, "cancelled": 2}
    assert microsoft(simulator).tenant(tenant.entra_tenant).partner["Provisioned"] == 2
    assert statuses(tenant) == {Status.SUPERSEDED: 2}
    assert deliver_tenant(tenant.pk).stopped == "Intune integration disabled"
    tenant.refresh_from_db()
    assert tenant.client_id and tenant.client_secrets.exists() and tenant.entra_tenant


def test_enabling_the_tenant_queues_provisioning(tenant_a, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    tenant_a.intune_enabled = True
    with django_capture_on_commit_callbacks(execute=True):
        tenant_a.save()
    with django_capture_on_commit_callbacks(execute=True):
        tenant_a.save()  # no change: nothing more
    tasks = [q.task for q in OrmQ.objects.all()]
    assert [(t["func"], t["args"]) for t in tasks] == [("compliance.tasks.provision_task", (tenant_a.pk,))]


def test_retire_reports_state_one(simulator, tenant):
    mac, other = registered_macs(tenant, 2)
    queue_reports(tenant.pk)
    drain(tenant)

    result = retire(tenant.pk, [mac.pk], requested_by="op")

    assert result.created == 1
    row = ComplianceReport.objects.filter(computer=mac).latest("id")
    assert (row.reason, row.inventory_state, row.payload[0]["State"], row.payload[0]["DeviceManagementState"]) == (
        "retire", 1, 1, "notManaged")
    drain(tenant)
    stored = microsoft(simulator).device(tenant.entra_tenant, row.entra_device_id)[row.entra_user_id]
    assert stored["inventory"]["State"] == 1
