"""Evaluate-to-outbox: which (computer, user) pairs get a pending report, and when."""

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import ComplianceReport, OutboxMessage
from compliance.outbox import decide, queue_reports, refresh_interval
from devices.models import Computer, UserAccount
from tests.compliance.sync_helpers import registered_macs
from tests.factories import ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status
Reason = ComplianceReport.Reason


@pytest.fixture
def tenant(intune_tenant):
    return intune_tenant


def test_one_pending_report_per_registered_pair_with_the_payload(tenant):
    macs = registered_macs(tenant, 3, users=2)
    unregistered = ComputerFactory(tenant=tenant, entra_device_id="")
    UserAccountFactory(computer=unregistered, username="nobody")

    result = queue_reports(tenant.pk)

    assert (result.pairs, result.created) == (6, 6)
    rows = list(ComplianceReport.objects.filter(tenant=tenant).order_by("id"))
    assert {r.computer_id for r in rows} == {m.pk for m in macs}
    row = rows[0]
    user = UserAccount.objects.get(pk=row.user_account_id)
    assert (row.status, row.reason, row.latest) == (Status.PENDING, Reason.NEW, True)
    # Each report is made with its message (batch size 5 here): its ID and UploadTime, and the outbox entry.
    messages = {m.id: m for m in OutboxMessage.objects.filter(tenant=tenant)}
    assert sorted(sum(r.message_id == mid for r in rows) for mid in messages) == [1, 5]
    assert all(r.batched_at == messages[r.message_id].upload_time == r.created_at for r in rows)
    assert all((m.status, m.claimed, m.next_attempt_at) == (OutboxMessage.Status.PENDING, False, rows[0].created_at)
               for m in messages.values())
    assert (row.username, row.entra_user_id, row.inventory_state, row.compliance_status) == (
        user.username, user.entra_user_id, 0, user.compliance_status)
    device, verdict = row.payload
    assert device["EntityType"] == 1 and verdict["EntityType"] == 4
    assert device["TenantId"] == str(tenant.entra_tenant_id)
    assert device["DeviceId"] == row.entra_device_id and device["UserId"] == user.entra_user_id
    assert verdict["complianceStatus"] == user.compliance_status
    assert row.next_attempt_at is not None and len(row.payload_hash) == 64


def test_nothing_new_when_nothing_changed_and_a_change_supersedes_the_unsent_report(tenant):
    mac, = registered_macs(tenant, 1)
    queue_reports(tenant.pk)
    assert queue_reports(tenant.pk).created == 0

    Computer.objects.filter(pk=mac.pk).update(os_version="15.2")
    result = queue_reports(tenant.pk)

    assert (result.created, result.superseded) == (1, 1)
    old, new = ComplianceReport.objects.filter(computer=mac).order_by("id")
    assert (old.status, old.latest, new.status, new.latest, new.reason) == (
        Status.SUPERSEDED, False, Status.PENDING, True, Reason.CHANGED)
    assert new.payload[0]["OsVersion"] == "15.2"


def test_a_sent_report_is_not_superseded_and_keeps_its_message(tenant):
    mac, = registered_macs(tenant, 1)
    queue_reports(tenant.pk)
    OutboxMessage.objects.update(claimed=True, attempts=1)  # claimed: it may have reached Intune
    Computer.objects.filter(pk=mac.pk).update(os_version="15.3")

    queue_reports(tenant.pk)

    old, new = ComplianceReport.objects.filter(computer=mac).order_by("id")
    assert (old.status, old.latest) == (Status.PENDING, False)  # still goes out, under its message ID
    assert (new.status, new.latest) == (Status.PENDING, True)


def test_state_change_and_refresh_and_failed_retry(tenant):
    now = timezone.now()
    mac, = registered_macs(tenant, 1, now=now)
    queue_reports(tenant.pk, now=now)
    ComplianceReport.objects.update(status=Status.COMPLETED, sent_at=now)

    # Unresponsive: the Mac crossed the 24 h line; evaluation stored state 2.
    Computer.objects.filter(pk=mac.pk).update(inventory_state=2)
    result = queue_reports(tenant.pk, now=now)
    assert dict(result.reasons) == {Reason.STATE: 1}
    ComplianceReport.objects.filter(status=Status.PENDING).update(status=Status.COMPLETED, sent_at=now)

    refresh = refresh_interval(tenant)
    assert queue_reports(tenant.pk, now=now + refresh - datetime.timedelta(minutes=1)).created == 0
    assert dict(queue_reports(tenant.pk, now=now + refresh + datetime.timedelta(minutes=1)).reasons) == {
        Reason.REFRESH: 1}


def test_refresh_stays_well_inside_the_validity_period(tenant, settings):
    settings.INTUNE_REPORT_REFRESH_HOURS = 24 * 30
    tenant.compliance_validity_days = 3
    assert refresh_interval(tenant) == datetime.timedelta(days=1)


def test_decide_rules():
    now = timezone.now()
    hour = datetime.timedelta(hours=1)
    prev = {"kind": "report", "status": Status.COMPLETED, "payload_hash": "h", "inventory_state": 0,
            "entra_device_id": "d", "created_at": now - 2 * hour, "sent_at": now - 2 * hour}
    assert decide(None, "h", 0, now, hour * 24, hour, "d") == Reason.NEW
    assert decide(prev, "h", 0, now, hour * 24, hour, "d") is None
    assert decide(prev, "x", 0, now, hour * 24, hour, "d") == Reason.CHANGED
    assert decide(prev, "x", 1, now, hour * 24, hour, "d") == Reason.STATE
    assert decide(prev, "h", 0, now, hour, hour, "d") == Reason.REFRESH
    assert decide({**prev, "status": Status.PENDING}, "h", 0, now, hour, hour, "d") is None
    assert decide({**prev, "status": Status.FAILED}, "h", 0, now, hour * 24, hour, "d") == Reason.RETRY
    assert decide({**prev, "status": Status.FAILED}, "h", 0, now, hour * 24, hour * 3, "d") is None
    assert decide({**prev, "kind": "delete"}, "x", 0, now, hour, hour, "d") is None
    assert decide({**prev, "kind": "delete"}, "x", 0, now, hour, hour, "new-device") == Reason.NEW


def test_disabled_tenant_gets_no_reports(tenant):
    registered_macs(tenant, 2)
    type(tenant).objects.filter(pk=tenant.pk).update(intune_enabled=False)
    result = queue_reports(tenant.pk)
    assert (result.created, result.skipped) == (0, "Intune integration disabled")
    assert not ComplianceReport.objects.exists()


def test_dry_run_writes_nothing_and_shows_each_payload(tenant):
    registered_macs(tenant, 2)
    seen = []
    result = queue_reports(tenant.pk, dry_run=True, on_payload=lambda c, u, why, e: seen.append((c.id, why, e)))
    assert result.created == 2 and len(seen) == 2 and not ComplianceReport.objects.exists()


def test_incremental_reads_only_macs_changed_since(tenant):
    now = timezone.now()
    registered_macs(tenant, 3, now=now)
    queue_reports(tenant.pk, now=now)
    ComplianceReport.objects.update(status=Status.COMPLETED, sent_at=now)
    later = timezone.now()
    changed = Computer.objects.filter(tenant=tenant).order_by("id").first()
    Computer.objects.filter(pk=changed.pk).update(os_version="15.4", updated_at=later)
    result = queue_reports(tenant.pk, since=later)
    assert (result.pairs, result.created) == (1, 1)


def test_query_count_does_not_grow_with_the_fleet(tenant):
    registered_macs(tenant, 5)
    with CaptureQueriesContext(connection) as small:
        queue_reports(tenant.pk)
    registered_macs(tenant, 40)
    with CaptureQueriesContext(connection) as large:
        queue_reports(tenant.pk)
    # A few statements per chunk of Macs (the INSERT may be split by the backend's parameter limit), none per Mac.
    assert len(small.captured_queries) <= 16
    assert len(large.captured_queries) <= len(small.captured_queries) + 3


def test_reports_are_written_as_the_orm_would_write_them(tenant):
    # insert_reports writes tuples (devices.bulk), not instances: every column must match what
    # ComplianceReport(**values) + bulk_create stored before, defaults included.
    from compliance.intune.payloads import entities_for, payload_hash
    from compliance.outbox import insert_reports, tenant_guid

    macs = registered_macs(tenant, 2, users=2)
    now = timezone.now()
    values = []
    for user in UserAccount.objects.filter(computer__in=macs).order_by("id"):
        entities = entities_for(tenant_guid(tenant), user.computer, user, 0, "compliant", now)
        values.append({
            "tenant_id": tenant.pk, "computer_id": user.computer_id, "user_account_id": user.pk, "kind": "report",
            "reason": "new", "username": user.username, "entra_device_id": user.entra_device_id,
            "entra_user_id": user.entra_user_id, "inventory_state": 0, "compliance_status": "compliant",
            "payload": entities, "payload_hash": payload_hash(entities), "status": "pending", "latest": True,
            "next_attempt_at": now, "requested_by": "", "created_at": now, "updated_at": now,
        })
    insert_reports([dict(row, payload=json.dumps(row["payload"])) for row in values])
    written = list(ComplianceReport.objects.order_by("id"))
    ComplianceReport.objects.all().delete()
    ComplianceReport.objects.bulk_create([ComplianceReport(**row, message_id=r.message_id, batched_at=r.batched_at)
                                          for row, r in zip(values, written, strict=True)])
    assert len({r.message_id for r in written}) == 1 and OutboxMessage.objects.get().id == written[0].message_id
    expected = list(ComplianceReport.objects.order_by("id"))
    fields = [f.attname for f in ComplianceReport._meta.concrete_fields if f.attname not in ("id", "created_at",
                                                                                            "updated_at")]
    assert [[getattr(r, f) for f in fields] for r in written] == [[getattr(r, f) for f in fields] for r in expected]


def test_chunks_cover_every_mac_once_when_tenants_interleave(tenant, tenant_b, monkeypatch):
    # The Macs are read in chunks of IDs; another tenant's Macs between them (and Macs without an evaluation) must
    # neither be reported nor make a chunk skip or repeat one of this tenant's (nor do Macs without a user).
    from compliance import outbox

    monkeypatch.setattr(outbox, "CHUNK", 3)
    mine = []
    for _ in range(4):
        mine += registered_macs(tenant, 2)
        ComputerFactory(tenant=tenant_b)
        ComputerFactory(tenant=tenant, entra_device_id="x")  # no user: no pair
    result = queue_reports(tenant.pk)
    assert (result.pairs, result.created) == (8, 8)
    assert sorted(ComplianceReport.objects.values_list("computer_id", flat=True)) == sorted(m.pk for m in mine)

    some = [mine[1].pk, mine[6].pk, mine[4].pk, mine[4].pk, ComputerFactory(tenant=tenant_b).pk]
    Computer.objects.filter(pk__in=some).update(os_version="15.9")
    result = queue_reports(tenant.pk, computer_ids=some)
    assert (result.pairs, result.created, result.superseded) == (3, 3, 3)
    changed = ComplianceReport.objects.filter(reason=Reason.CHANGED).values_list("computer_id", flat=True)
    assert sorted(changed) == sorted({mine[1].pk, mine[6].pk, mine[4].pk})


def _stored_columns():
    """Every stored column of the reports but the key and the two auto timestamps, as the database holds it (the
    payload as its text), in ID order."""
    columns = [f.column for f in ComplianceReport._meta.concrete_fields if f.attname not in ("id", "created_at",
                                                                                           "updated_at")]
    select = ", ".join("%s::text" % c if c == "payload" and connection.vendor == "postgresql" else c for c in columns)
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s FROM compliance_compliancereport ORDER BY id" % select)  # noqa: S608
        return cursor.fetchall()


def test_queued_rows_are_what_the_entities_and_the_orm_gave(tenant):
    # queue_reports fills the payload text and hash from templates and writes tuples: every stored column must be
    # what building the entities, json.dumps, payload_hash and bulk_create of instances stored before.
    from compliance.intune.payloads import entities_for, payload_hash
    from compliance.outbox import tenant_guid

    macs = registered_macs(tenant, 3, users=2)
    Computer.objects.filter(pk=macs[0].pk).update(name='José\'s "Mac" 100%', os_version=" 15.1 ")
    UserAccount.objects.filter(computer=macs[1], username="user0").update(username="Zoë")
    now = timezone.now()
    queue_reports(tenant.pk, now=now, requested_by="ops")
    written = _stored_columns()
    messages = list(ComplianceReport.objects.order_by("id").values_list("message_id", flat=True))
    assert [messages.count(m) for m in sorted(set(messages), key=messages.index)] == [5, 1]  # batch size 5

    ComplianceReport.objects.all().delete()
    expected = []
    for user in UserAccount.objects.select_related("computer").order_by("computer_id", "id"):
        computer = user.computer
        entities = entities_for(tenant_guid(tenant), computer, user, computer.inventory_state, user.compliance_status,
                                now)
        expected.append(ComplianceReport(
            tenant_id=tenant.pk, computer_id=computer.pk, user_account_id=user.pk, kind="report", reason="new",
            username=user.username, entra_device_id=user.entra_device_id or computer.entra_device_id,
            entra_user_id=user.entra_user_id, inventory_state=computer.inventory_state,
            compliance_status=user.compliance_status or "", payload=entities, payload_hash=payload_hash(entities),
            status="pending", latest=True, next_attempt_at=now, requested_by="ops",
            message_id=messages[len(expected)], batched_at=now,
        ))
    ComplianceReport.objects.bulk_create(expected)
    assert len(written) == 6
    assert written == _stored_columns()
