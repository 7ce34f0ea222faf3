"""The outbox's messages (compliance.models.OutboxMessage): made with their reports, one write of a report per answer
from Intune, and the move of the delivery state from the reports to the messages (migration 0007)."""

import datetime
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from compliance.delivery import TenantDelivery, claim, deliver_tenant, poll_status, release_expired_leases
from compliance.intune.errors import IntuneError, Problem
from compliance.models import ComplianceReport, OutboxMessage
from compliance.outbox import cancel_pending, insert_reports, queue_reports
from tests.compliance.sync_helpers import registered_macs, statuses

Status = ComplianceReport.Status
# What the delivery and the read-back write on a report (delivery._accept, poll_status, _backoff).
DELIVERY_COLUMNS = {"status", "sent_at", "attempts", "next_attempt_at", "error_code", "error_detail", "updated_at",
                    "finished_at"}


def _indexed_columns(model):
    """Every column an index or a unique constraint of ``model`` names, in its fields or in its condition."""
    meta = model._meta
    columns = {f.column for f in meta.concrete_fields if f.db_index or f.unique}
    for index in [*meta.indexes, *meta.constraints]:
        columns.update(meta.get_field(name.lstrip("-")).column for name in getattr(index, "fields", ()))
        condition = getattr(index, "condition", None)
        stack = [condition] if condition is not None else []
        while stack:
            node = stack.pop()
            for child in node.children:
                if isinstance(child, tuple):
                    columns.add(meta.get_field(child[0].split("__")[0]).column)
                else:
                    stack.append(child)
    return columns


def test_no_index_of_the_reports_names_a_column_the_delivery_writes():
    # PostgreSQL writes an accepted (or completed) report as a heap-only tuple, with no index entries, only when no
    # index names a column that changed, in its fields or its condition: an index on the status would double the
    # delivery's database work (docs/benchmarks.md).
    assert _indexed_columns(ComplianceReport) & DELIVERY_COLUMNS == set()


def _updates_of_the_reports():
    """(rows updated, of which heap-only) in the reports table so far, this backend's latest counts included."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # at the end of this statement's transaction
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                       "WHERE relname = 'compliance_compliancereport'")
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_the_accept_and_the_read_back_are_heap_only_updates_on_postgresql(simulator, intune_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("heap-only tuples and fillfactor are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'compliance_compliancereport'")
        definitions = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'compliance_compliancereport'")
        assert cursor.fetchone()[0] == ["fillfactor=50"]
    assert not [column for column in DELIVERY_COLUMNS if column in definitions]

    registered_macs(intune_tenant, 12)
    queue_reports(intune_tenant.pk)
    before = _updates_of_the_reports()
    deliver_tenant(intune_tenant.pk, concurrency=1)  # on this connection: its statistics are flushed above
    accepted = _updates_of_the_reports()
    poll_status(intune_tenant.pk)  # committed transactions apart, as in production: the accept's old rows pruned
    completed = _updates_of_the_reports()
    assert statuses(intune_tenant) == {Status.COMPLETED: 12}
    # Accepted, then completed: each report written twice, and never an index entry.
    assert (accepted[0] - before[0], accepted[1] - before[1]) == (12, 12)
    assert (completed[0] - accepted[0], completed[1] - accepted[1]) == (12, 12)


@pytest.mark.django_db
def test_reports_inserted_pending_get_messages_of_the_batch_size(intune_tenant, tenant_b, settings):
    settings.INTUNE_BATCH_SIZE = 2
    a = registered_macs(intune_tenant, 3)
    b = registered_macs(tenant_b, 1)
    now = timezone.now()
    rows = [{"tenant_id": mac.tenant_id, "computer_id": mac.pk, "payload": "[]", "created_at": now, "updated_at": now}
            for mac in a + b]
    rows.append(dict(rows[0], status=Status.COMPLETED))  # history: no message
    insert_reports(rows)
    pending = ComplianceReport.objects.filter(status=Status.PENDING)
    assert not pending.filter(message_id=None).exists()
    assert ComplianceReport.objects.get(status=Status.COMPLETED).message_id is None
    sizes = {(m.tenant_id, pending.filter(message_id=m.id).count()) for m in OutboxMessage.objects.all()}
    assert sorted(sizes) == sorted({(intune_tenant.pk, 2), (intune_tenant.pk, 1), (tenant_b.pk, 1)})


@pytest.mark.django_db
def test_cancelling_drops_the_waiting_messages_and_leaves_one_in_flight(intune_tenant, settings):
    settings.INTUNE_BATCH_SIZE = 1
    registered_macs(intune_tenant, 2)
    queue_reports(intune_tenant.pk)
    in_flight, waiting = OutboxMessage.objects.order_by("id")
    OutboxMessage.objects.filter(id=in_flight.id).update(
        claimed=True, lease_expires_at=timezone.now() + datetime.timedelta(minutes=5))
    assert cancel_pending(intune_tenant.pk, "Intune integration disabled") == 1
    assert list(OutboxMessage.objects.values_list("id", flat=True)) == [in_flight.id]
    assert ComplianceReport.objects.get(message_id=waiting.id).status == Status.SUPERSEDED
    assert ComplianceReport.objects.get(message_id=in_flight.id).status == Status.PENDING
    # A lease that ran out is a worker gone: no delivery of a disabled tenant would ever release it.
    OutboxMessage.objects.update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert cancel_pending(intune_tenant.pk, "Intune integration disabled") == 1
    assert not OutboxMessage.objects.exists() and statuses(intune_tenant) == {Status.SUPERSEDED: 2}


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_open_reports_into_messages_and_keeps_their_ids(intune_tenant, settings):
    settings.INTUNE_BATCH_SIZE = 2
    macs = registered_macs(intune_tenant, 6)
    executor = MigrationExecutor(connection)
    executor.migrate([("compliance", "0006_report_message_partial")])
    apps = executor.loader.project_state([("compliance", "0006_report_message_partial")]).apps
    Report = apps.get_model("compliance", "ComplianceReport")
    now = timezone.now()
    sent_id, accepted_id = uuid.uuid4(), uuid.uuid4()

    def report(mac, **values):
        return Report.objects.create(tenant_id=intune_tenant.pk, computer_id=mac.pk, payload=[], **values)

    never_sent = [report(mac, next_attempt_at=now) for mac in macs[:3]]
    report(macs[3], status="sending", message_id=sent_id, batched_at=now, attempts=2, lease_expires_at=now)
    report(macs[4], status="accepted", message_id=accepted_id, batched_at=now, attempts=1, sent_at=now)
    done = report(macs[5], status="completed", message_id=uuid.uuid4(), batched_at=now, sent_at=now)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    messages = {m.id: m for m in OutboxMessage.objects.all()}
    resend = messages.pop(sent_id)  # claimed before: the same message, due now, keeps its attempts
    assert (resend.status, resend.claimed, resend.attempts) == ("pending", True, 2)
    assert ComplianceReport.objects.get(message_id=sent_id).status == Status.PENDING
    accepted = messages.pop(accepted_id)
    assert (accepted.status, accepted.sent_at) == ("accepted", now)
    # The reports that never had a message get new ones, INTUNE_BATCH_SIZE each; a finished one gets none.
    assert sorted(ComplianceReport.objects.filter(message_id=m).count() for m in messages) == [1, 2]
    assert all(not m.claimed and m.status == "pending" for m in messages.values())
    assert not ComplianceReport.objects.filter(pk__in=[r.pk for r in never_sent], message_id=None).exists()
    assert not OutboxMessage.objects.filter(id=ComplianceReport.objects.get(pk=done.pk).message_id).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_a_message_pending_while_one_of_its_reports_is(intune_tenant):
    # The old claim could take part of a message's rows: some accepted, the rest still waiting under the same ID.
    macs = registered_macs(intune_tenant, 2)
    executor = MigrationExecutor(connection)
    executor.migrate([("compliance", "0006_report_message_partial")])
    Report = executor.loader.project_state([("compliance", "0006_report_message_partial")]).apps.get_model(
        "compliance", "ComplianceReport")
    now, message_id = timezone.now(), uuid.uuid4()
    for mac, status in zip(macs, ("accepted", "pending"), strict=True):
        Report.objects.create(tenant_id=intune_tenant.pk, computer_id=mac.pk, payload=[], status=status,
                              message_id=message_id, batched_at=now, attempts=1, next_attempt_at=now,
                              sent_at=now if status == "accepted" else None)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    message = OutboxMessage.objects.get(id=message_id)
    assert (message.status, message.claimed, message.next_attempt_at) == ("pending", True, now)


class FakeIntune:
    """Applies a message ID once, as Intune does; answers 400 to a message holding the ``bad`` device; runs a hook
    (keyed by message ID, or "*" for every upload) before answering."""

    def __init__(self, bad="", hooks=None):
        self.bad, self.hooks, self.applied = bad, hooks or {}, {}

    def upload(self, message_id, entities, upload_time=None):
        hook = self.hooks.pop(str(message_id), None) or self.hooks.get("*")
        if hook:
            hook(message_id, entities)
        if self.bad and self.bad in entities:
            raise IntuneError(Problem("bad_request", "invalid", "", detail="PUT → 400 BadRequest: bad", status=400))
        self.applied.setdefault(str(message_id), entities)


@pytest.mark.django_db
def test_a_worker_whose_lease_ran_out_leaves_the_message_to_the_one_that_claimed_it(intune_tenant, settings):
    settings.INTUNE_BATCH_SIZE = 2
    registered_macs(intune_tenant, 2)
    queue_reports(intune_tenant.pk)
    OutboxMessage.objects.update(attempts=11, claimed=True)  # the last of INTUNE_DELIVERY_MAX_ATTEMPTS (12)
    other = TenantDelivery(intune_tenant, client=FakeIntune(), concurrency=1)
    message, = claim(intune_tenant.pk, 1)

    def stalls_past_its_lease(message_id, entities):
        OutboxMessage.objects.update(lease_expires_at=timezone.now())
        release_expired_leases(intune_tenant.pk)
        again, = claim(intune_tenant.pk, 1)
        other.send(again)  # another worker's run: 202, accepted
        raise IntuneError(Problem("timeout", "timed out", "", detail="read timeout"))

    late = TenantDelivery(intune_tenant, client=FakeIntune(hooks={str(message.message_id): stalls_past_its_lease}))
    late.send(message)
    # The late worker's failure neither fails the reports nor drops the message their read-back needs.
    assert statuses(intune_tenant) == {Status.ACCEPTED: 2}
    assert OutboxMessage.objects.get(id=message.message_id).status == OutboxMessage.Status.ACCEPTED
    assert late.result.counters["lease_lost"] == 1


@pytest.mark.django_db
def test_a_split_half_taken_over_after_its_lease_is_not_sent_twice(intune_tenant, settings):
    settings.INTUNE_BATCH_SIZE = 4
    registered_macs(intune_tenant, 4)
    queue_reports(intune_tenant.pk)
    reports = list(ComplianceReport.objects.order_by("id"))
    bad, third = reports[3].entra_device_id, reports[2].entra_device_id
    intune = FakeIntune(bad)
    worker = TenantDelivery(intune_tenant, client=intune, concurrency=1)
    other = TenantDelivery(intune_tenant, client=intune, concurrency=1)
    taken = {}

    def meanwhile(message_id, entities):
        if "first" not in taken and third not in entities and bad not in entities:
            # The first half goes out slowly: the second half's lease runs out and another run claims it.
            taken["first"] = True
            OutboxMessage.objects.exclude(id=message_id).update(lease_expires_at=timezone.now())
            release_expired_leases(intune_tenant.pk)
            taken["second"], = claim(intune_tenant.pk, 1)
            other.send(taken["second"])  # and splits it: the third report goes out alone, once

    intune.hooks["*"] = meanwhile
    message, = claim(intune_tenant.pk, 1)
    worker.send(message)
    sent_under = [mid for mid, content in intune.applied.items() if third in content]
    assert len(sent_under) == 1, sent_under
    assert worker.result.counters["lease_lost"] == 1
    assert statuses(intune_tenant) == {Status.ACCEPTED: 3, Status.FAILED: 1}


@pytest.mark.django_db
def test_the_accept_is_one_statement_committed_without_waiting_for_its_wal_flush(intune_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    from django.test.utils import CaptureQueriesContext

    from compliance.delivery import _accept

    registered_macs(intune_tenant, 3)
    queue_reports(intune_tenant.pk)
    message, = claim(intune_tenant.pk, 1)
    with CaptureQueriesContext(connection) as queries:
        assert _accept(message.message_id, message.row_ids, timezone.now()) == 3
    assert len(queries.captured_queries) == 1
    with connection.cursor() as cursor:  # inside this test's transaction, where the setting took effect
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
    assert statuses(intune_tenant) == {Status.ACCEPTED: 3}
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.ACCEPTED
