"""Evaluate-to-outbox: turn a tenant's stored evaluation results into pending reports for Intune.

For each registered (computer, user account) pair of a tenant (an Entra device ID and an Entra user
ID, design section 5) a pending :class:`~compliance.models.ComplianceReport` is made when

- the pair has never been reported, or its payload hash differs from its last report (the hash leaves
  out ``LastUpdateTime``, so it changes exactly when what Intune would store changes; a change of the
  inventory state changes it too);
- its last report was accepted longer ago than the refresh interval (``INTUNE_REPORT_REFRESH_HOURS``,
  capped at a third of the tenant's ``compliance_validity_days``), so Intune never lets a healthy Mac
  lapse;
- its last report failed longer ago than ``INTUNE_RETRY_FAILED_AFTER_HOURS`` (an operator can re-send
  sooner).

A pair whose Mac lacks what a well-formed report needs (``payloads.hold_reason``: no check-in nor report
date, no macOS version) is held back and counted (``held_<code>``) instead.

A newer pending report supersedes an older pending one of the same pair that was never sent (a row
that was already sent keeps its message, so a resend stays the same PUT; Intune orders the two by
``LastUpdateTime``). The work is set-based: Macs are read in chunks by primary key, so the queries
grow with N / chunk and the memory stays flat at any fleet size.
"""

import datetime
import functools
import json
import logging
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from compliance.intune.payloads import entities_for, hold_reason, isoformat, partner_report, payload_hash
from compliance.models import ComplianceReport, OutboxMessage
from devices.bulk import RowWriter, filter_in, select_rows
from devices.models import Computer, UserAccount
from portal.models import ReportingMode, Tenant

logger = logging.getLogger(__name__)

# Macs per read-and-write round, a transaction each (1,000 took 10-20 % longer at 100,000 Macs: a commit and six
# statements a round); an ID list stays far below SQLite's variable limit (32,766).
CHUNK = 5000
Status = ComplianceReport.Status
Reason = ComplianceReport.Reason
Kind = ComplianceReport.Kind
OPEN = (Status.PENDING,)
SENT = (Status.ACCEPTED, Status.COMPLETED)
# What the payload builders read (compliance/intune/payloads.py), loaded as named tuples rather than model
# instances: at 100,000 Macs building instances and parsing unused dates costs more than the rest together.
PARTNER_COMPUTER_FIELDS = (
    "id", "tenant_id", "name", "serial_number", "udid", "entra_device_id", "last_check_in", "last_inventory_update",
    "os_name", "os_version", "inventory_state",
)
PARTNER_USER_FIELDS = ("id", "computer_id", "username", "entra_device_id", "entra_user_id", "compliance_status")
LATEST_FIELDS = (
    "id", "user_account_id", "kind", "status", "payload_hash", "inventory_state", "entra_device_id", "created_at",
    "sent_at",
)


@dataclass
class OutboxResult:
    """What :func:`queue_reports` did; ``counters`` is what a SyncRun stores."""

    tenant_id: int
    pairs: int = 0
    created: int = 0
    superseded: int = 0
    unchanged: int = 0
    skipped: str = ""
    reasons: Counter = field(default_factory=Counter)
    held: Counter = field(default_factory=Counter)  # pairs not reported, by payloads.HOLD_REASONS code

    @property
    def counters(self):
        counters = {"pairs": self.pairs, "created": self.created, "superseded": self.superseded,
                    "unchanged": self.unchanged}
        counters.update({"reason_%s" % key: value for key, value in sorted(self.reasons.items())})
        counters.update({"held_%s" % key: value for key, value in sorted(self.held.items())})
        if self.skipped:
            counters["skipped"] = self.skipped
        return counters


def refresh_interval(tenant):
    """How old the last accepted report of a pair may get before it is sent again: well inside the validity."""
    hours = float(settings.INTUNE_REPORT_REFRESH_HOURS)
    return datetime.timedelta(hours=min(hours, tenant.compliance_validity_days * 24 / 3))


def tenant_guid(tenant):
    """The tenant's Entra GUID for the payloads: learned from a token, or configured as the tenant itself."""
    if tenant.entra_tenant_id:
        return str(tenant.entra_tenant_id)
    from portal.models import GUID_RE

    return tenant.entra_tenant.lower() if GUID_RE.match(tenant.entra_tenant or "") else None


def pair_device_id(computer, user):
    return user.entra_device_id or computer.entra_device_id


def decide(previous, new_hash, state, now, refresh, retry_failed_after, device_id):
    """The reason to make a report for a pair, or None to leave it (pure; ``previous`` is a dict or None)."""
    if previous is None:
        return Reason.NEW
    if previous["kind"] == Kind.DELETE:
        # Deleted from Entra ID and Intune by an operator: report again only once the Mac registers anew.
        return None if previous["entra_device_id"] == device_id else Reason.NEW
    if previous["status"] == Status.SUPERSEDED:  # cancelled when Intune was disabled
        return Reason.NEW
    if previous["payload_hash"] != new_hash:
        return Reason.STATE if previous["inventory_state"] != state else Reason.CHANGED
    if previous["status"] in OPEN:
        return None
    if previous["status"] in SENT:
        sent = previous["sent_at"] or previous["created_at"]
        return Reason.REFRESH if sent < now - refresh else None
    if previous["status"] == Status.FAILED:
        return Reason.RETRY if previous["created_at"] < now - retry_failed_after else None
    return None


def _lock_tenant(tenant_id):
    """Serialise outbox writers of one tenant. PostgreSQL: a transaction-level advisory lock; SQLite's
    IMMEDIATE transactions already hold the database's write lock from their first statement."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x0B0C, int(tenant_id)])


def changed_since_q(tenant_id, since):
    """Macs whose inventory or evaluation changed since ``since`` (the incremental outbox of the deliver task)."""
    users = UserAccount.objects.filter(computer__tenant_id=tenant_id, evaluated_at__gte=since).values("computer_id")
    return Q(updated_at__gte=since) | Q(evaluated_at__gte=since) | Q(id__in=users)


def queue_reports(tenant_id, computer_ids=None, since=None, now=None, force=False, reason=None, requested_by="",
                  dry_run=False, on_payload=None):
    """Make the pending reports a tenant's stored evaluation calls for; returns an :class:`OutboxResult`.

    ``computer_ids`` limits it to those Macs, ``since`` to Macs changed since then. ``force`` makes a
    report for every registered pair whatever the last one was (``reason``: resend or retire). With
    ``dry_run`` nothing is written and ``on_payload(computer, user, reason, entities)`` sees each report
    that would be made.
    """
    now = now or timezone.now()
    result = OutboxResult(tenant_id)
    tenant = Tenant.objects.get(pk=tenant_id)
    if not (tenant.is_active and tenant.intune_enabled) and not dry_run:
        result.skipped = "Intune integration disabled"
        return result
    guid = tenant_guid(tenant)
    if guid is None:
        result.skipped = "tenant ID not known yet (test the connection or provision first)"
        logger.info("tenant %s: no reports queued, its Entra tenant ID is not known yet", tenant.slug)
        return result
    inventory_mode = tenant.reporting_mode == ReportingMode.INVENTORY
    refresh = refresh_interval(tenant)
    retry_failed_after = datetime.timedelta(hours=float(settings.INTUNE_RETRY_FAILED_AFTER_HOURS))

    computers = Computer.objects.filter(inventory_state__isnull=False)
    if since is not None:
        computers = computers.filter(changed_since_q(tenant_id, since))
    if inventory_mode:  # the legacy attribute set reads nearly every field
        computer_fields = [f.attname for f in Computer._meta.concrete_fields]
        user_fields = [f.attname for f in UserAccount._meta.concrete_fields]
    else:
        computer_fields, user_fields = PARTNER_COMPUTER_FIELDS, PARTNER_USER_FIELDS
    for chunk_ids in _chunks(_mac_ids(computers.filter(tenant_id=tenant_id), computer_ids)):
        with transaction.atomic():
            if not dry_run:
                _lock_tenant(tenant_id)
            # By primary key alone, the tenant checked here: with the tenant in the WHERE clause PostgreSQL may
            # scan the tenant's index for each chunk (it did wherever the table had no statistics yet).
            wanted = set(chunk_ids)
            macs = [
                mac for mac in _rows(_within(computers, "id", chunk_ids).order_by("id"), computer_fields,
                                     inventory_mode)
                if mac.tenant_id == tenant.pk and mac.id in wanted
            ]
            if macs:
                _queue_chunk(tenant, guid, macs, user_fields, now, refresh, retry_failed_after, inventory_mode,
                             force, reason, requested_by, dry_run, on_payload, result)
    if result.created:
        logger.info("tenant %s: %d reports queued %s", tenant.slug, result.created, dict(result.reasons))
    if result.held:
        logger.info("tenant %s: registered Macs held back from Intune %s", tenant.slug, dict(result.held))
    return result


def _mac_ids(computers, computer_ids):
    """The IDs of the Macs to report, ascending, as an ``array`` (8 bytes a Mac): read in one query.

    Read once rather than page by page (``id > last ORDER BY id LIMIT n``): PostgreSQL answered such a page
    from the tenant's index and sorted every Mac of the tenant for each page, so a full pass grew with the
    square of the fleet (20 ms a page at 20,000 Macs). The chunks then read their Macs by primary key.
    """
    if computer_ids is not None:  # each chunk keeps only the tenant's
        return array("q", sorted(set(computer_ids)))
    return array("q", computers.order_by("id").values_list("id", flat=True))


def _chunks(ids):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK].tolist()


def _rows(queryset, fields, inventory_mode):
    """Named rows; partner mode reads its few plain columns with psycopg's own loaders (devices.bulk)."""
    if inventory_mode:  # every field, JSON included: Django's converters
        return list(queryset.values_list(*fields, named=True))
    return select_rows(queryset, fields)


def _within(queryset, field_name, ids):
    """``queryset`` narrowed to ``field_name`` in the sorted ``ids``, or to their range when they are dense (the
    caller drops what is not in ``ids``): one index range scan instead of an index probe per ID."""
    if ids and ids[-1] - ids[0] < 2 * len(ids):
        return queryset.filter(**{field_name + "__gte": ids[0], field_name + "__lte": ids[-1]})
    return filter_in(queryset, field_name, ids)


def _queue_chunk(tenant, guid, macs, user_fields, now, refresh, retry_failed_after, inventory_mode, force, reason,
                 requested_by, dry_run, on_payload, result):
    by_id = {mac.id: mac for mac in macs}
    users = UserAccount.objects.filter(compliance_status__isnull=False).exclude(entra_user_id="")
    first, last = macs[0].id, macs[-1].id  # macs come by ascending ID
    if last - first < 2 * len(macs):  # dense (a full pass): an ID range, and the odd user of another Mac is dropped
        users = users.filter(computer_id__gte=first, computer_id__lte=last)
    else:
        users = filter_in(users, "computer_id", list(by_id))
    users = [
        user for user in _rows(users.order_by("computer_id", "id"), user_fields, inventory_mode)
        if user.computer_id in by_id and pair_device_id(by_id[user.computer_id], user)
    ]
    if not users:
        return
    user_ids = sorted(user.id for user in users)
    wanted = set(user_ids)
    previous = {
        row[1]: dict(zip(LATEST_FIELDS, row, strict=True))
        for row in select_rows(
            _within(ComplianceReport.objects.filter(latest=True), "user_account_id", user_ids), LATEST_FIELDS,
            named=False,
        )
        if row[1] in wanted
    }
    rows = _new_rows(tenant, guid, by_id, users, previous, now, refresh, retry_failed_after, inventory_mode, force,
                     reason, requested_by, on_payload, result)
    if dry_run:
        for _row in rows:
            pass
        return
    messages = MessageMaker(tenant.pk, now)
    if not previous and on_payload is None and connection.vendor == "postgresql":
        # No pair of the chunk has a report yet (a tenant's first pass), so nothing is superseded first: the rows go
        # into the COPY as they are made, and PostgreSQL inserts them while the next ones are built (nothing else
        # may use the connection meanwhile, hence no on_payload).
        _writer().insert_new(messages.assign(rows), keys=False)
        messages.save()
        return
    rows = list(rows)
    if not rows:
        return
    # Never-sent pending reports of these pairs are replaced by the new ones; reports of a message that was claimed
    # keep it (it may have reached Intune: a resend must be the same PUT). Such a row is always its pair's latest
    # (every new report supersedes them in this same transaction), so only pairs that have a latest report need
    # the two updates: none, on a tenant's first pass.
    position = _writer().columns.index("user_account_id")
    pair_ids = [row[position] for row in rows if row[position] in previous]
    if pair_ids:
        pairs = filter_in(ComplianceReport.objects.all(), "user_account_id", pair_ids)
        result.superseded += supersede_unsent(pairs, now)
        pairs.filter(latest=True).update(latest=False)
    _writer().insert_new(messages.assign(rows), keys=False)
    messages.save()


def supersede_unsent(reports, now, why=""):
    """Mark the pending ``reports`` whose message was never claimed superseded; returns how many.

    A claim first locks its message row (``FOR UPDATE``), so this and a claim never both take a report: the
    message rows are locked here first too (PostgreSQL; SQLite's IMMEDIATE transaction holds the write lock).
    """
    pending = reports.filter(status=Status.PENDING)
    messages = OutboxMessage.objects.filter(id__in=set(pending.values_list("message_id", flat=True)), claimed=False)
    if connection.features.has_select_for_update:
        messages = messages.select_for_update()
    unsent = list(messages.values_list("id", flat=True))
    return pending.filter(Q(message_id__in=unsent) | Q(message_id__isnull=True)).update(
        status=Status.SUPERSEDED, finished_at=now, error_detail=why, updated_at=now
    )


class MessageMaker:
    """Groups new reports into DataUploadMessages as they are made: every ``INTUNE_BATCH_SIZE`` reports share a
    message ID and UploadTime; :meth:`save` then writes the :class:`OutboxMessage` rows, in the same transaction."""

    def __init__(self, tenant_id, now):
        self.tenant_id, self.now = tenant_id, now
        self.size = max(1, int(settings.INTUNE_BATCH_SIZE))
        self.ids = []
        columns = _writer().columns
        self.id_at, self.time_at = columns.index("message_id"), columns.index("batched_at")

    def assign(self, rows):
        """``rows`` (RowWriter rows), each with its message's ID and UploadTime (a generator)."""
        field = ComplianceReport._meta.get_field("message_id")
        count, stored = self.size, None
        for row in rows:
            if count == self.size:
                self.ids.append(uuid.uuid4())
                stored = field.get_db_prep_value(self.ids[-1], connection)  # SQLite: the hex text
                count = 0
            row[self.id_at], row[self.time_at] = stored, self.now
            count += 1
            yield row

    def save(self):
        OutboxMessage.objects.bulk_create([
            OutboxMessage(id=message_id, tenant_id=self.tenant_id, upload_time=self.now, next_attempt_at=self.now)
            for message_id in self.ids
        ])
        self.ids = []


def _new_rows(tenant, guid, by_id, users, previous, now, refresh, retry_failed_after, inventory_mode, force, reason,
              requested_by, on_payload, result):
    """The chunk's new reports as RowWriter rows, made one by one (a generator), counted in ``result``."""
    make_row = _row_maker(tenant.pk, now, requested_by)
    stamp = isoformat(now)  # every report of the run carries the same LastUpdateTime
    # Partner mode writes the payload text and hash from templates (payloads.partner_report: the same text and hash
    # as json.dumps and payload_hash of the entities); the legacy mode and a dry run's on_payload build the entities.
    fast = not inventory_mode and on_payload is None
    guid_json, stamp_json = json.dumps(str(guid)), json.dumps(stamp)
    for user in users:
        computer = by_id[user.computer_id]
        result.pairs += 1
        held = hold_reason(computer)
        if held is not None:  # a report would carry an empty value: wait for Jamf Pro to supply it
            result.held[held] += 1
            continue
        state = computer.inventory_state
        if fast:
            payload, digest = partner_report(guid_json, computer, user, state, user.compliance_status, stamp_json)
        else:
            entities = entities_for(guid, computer, user, state, user.compliance_status, stamp, inventory_mode)
            payload, digest = None, payload_hash(entities)
        device_id = pair_device_id(computer, user)
        if force:
            why = reason or Reason.RESEND
        else:
            why = decide(previous.get(user.id), digest, state, now, refresh, retry_failed_after, device_id)
        if why is None:
            result.unchanged += 1
            continue
        result.reasons[str(why)] += 1
        if on_payload is not None:
            on_payload(computer, user, why, entities)
        result.created += 1
        yield make_row((
            computer.id, user.id, str(why), user.username, device_id, user.entra_user_id, state,
            user.compliance_status or "", json.dumps(entities) if payload is None else payload, digest,
        ))


# The columns of a new report that differ from pair to pair, in the order _row_maker's function takes them.
PAIR_COLUMNS = ("computer_id", "user_account_id", "reason", "username", "entra_device_id", "entra_user_id",
                "inventory_state", "compliance_status", "payload", "payload_hash")


def _row_maker(tenant_id, now, requested_by):
    """A function from the PAIR_COLUMNS values of a report to its RowWriter row (every column): the run's constant
    columns and the defaults are filled once, not merged into a dict per report."""
    writer = _writer()
    template = writer.row({
        "tenant_id": tenant_id, "kind": Kind.REPORT.value, "status": Status.PENDING.value, "latest": True,
        "next_attempt_at": now, "requested_by": requested_by, "created_at": now, "updated_at": now,
    }, {})
    positions = tuple(writer.columns.index(name) for name in PAIR_COLUMNS)

    def make_row(values):
        row = list(template)
        for position, value in zip(positions, values, strict=True):
            row[position] = value
        return row

    return make_row


def insert_reports(rows):
    """Insert new reports (dicts of column values, the payload as its JSON text): ``COPY`` on PostgreSQL, several
    times faster than a multi-row INSERT of JSON payloads at 100,000 rows; ``executemany`` elsewhere
    (devices.bulk.RowWriter: no model instances). Every other column takes its field's default. Pending reports
    without a message get one (:class:`MessageMaker`), a tenant at a time."""
    writer = _writer()
    status_at, tenant_at = writer.columns.index("status"), writer.columns.index("tenant_id")
    made = [list(writer.row(row, {})) for row in rows]
    now = timezone.now()
    with transaction.atomic():
        for tenant_id in sorted({row[tenant_at] for row in made}):
            makers = MessageMaker(tenant_id, now)
            unsent = [row for row in made if row[tenant_at] == tenant_id and row[status_at] == Status.PENDING
                      and row[makers.id_at] is None]
            list(makers.assign(unsent))
            makers.save()
        writer.insert_new(made, keys=False)


@functools.cache
def _writer():
    return RowWriter(ComplianceReport)


def cancel_pending(tenant_id, why, now=None):
    """Stop the reports of a tenant that were not sent (Intune disabled): they end superseded, with the reason, and
    their messages are dropped. A message in flight is left to finish; one claimed before and waiting for its next
    attempt, or left by a worker whose lease ran out, is cancelled too (its reports were not accepted)."""
    now = now or timezone.now()
    with transaction.atomic():
        idle = OutboxMessage.objects.filter(tenant_id=tenant_id, status=OutboxMessage.Status.PENDING).filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)  # an expired lease: its worker is gone
        )
        if connection.features.has_select_for_update:
            idle = idle.select_for_update()
        ids = list(idle.values_list("id", flat=True))
        cancelled = ComplianceReport.objects.filter(tenant_id=tenant_id, status=Status.PENDING).filter(
            Q(message_id__in=ids) | Q(message_id__isnull=True)
        ).update(status=Status.SUPERSEDED, finished_at=now, error_detail=why, updated_at=now)
        OutboxMessage.objects.filter(id__in=ids).delete()
    return cancelled
