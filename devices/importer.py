"""Import Jamf Pro computers-inventory records: streamed, batched, idempotent upserts.

Used by ``manage.py import_inventory``, the upload API and the Jamf Pro pull. One transaction per
batch; a batch that fails is retried record by record, so one bad record never stops or
half-writes the others. A record whose ``general.reportDate`` is older than what is stored does
not overwrite it.
"""

import contextlib
import functools
import gc
import io
import json
import logging
import multiprocessing
import pickle
import queue
import threading
from dataclasses import dataclass, field

import ijson
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from devices.bulk import RowWriter, select_rows, select_sql
from devices.jamf.mapping import MappingError, map_computer_record
from devices.models import Computer, UserAccount
from devices.signals import announce_computers_changed, derive_new_computers
from devices.timestamps import clamp_note, clamp_to_receipt

logger = logging.getLogger(__name__)

USER_FIELDS = [
    "full_name", "uid", "account_type", "is_admin", "email", "entra_user_id", "entra_device_id", "entra_state",
    "password_history_depth", "password_min_complex_characters", "password_max_age_days", "password_type",
    "password_min_length", "screensaver_idle_minutes",
]


class InputError(ValueError):
    """The input as a whole cannot be read (not JSON, wrong top-level shape)."""


@dataclass
class Rejection:
    index: int
    jamf_id: str
    reason: str

    def as_dict(self):
        return {"index": self.index, "jamf_id": self.jamf_id, "reason": self.reason}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: list = field(default_factory=list)
    changed_ids: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)  # (index, jamf_id, outcome, reason) when asked for
    input_error: str = ""
    notes: list = field(default_factory=list)  # dates stored as the time of receipt (devices/timestamps.py)

    @property
    def total(self):
        return self.created + self.updated + self.unchanged + self.stale + len(self.rejected)

    def summary(self):
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged, "stale": self.stale,
            "rejected": len(self.rejected),
        }


# ---------------------------------------------------------------------------------------------
# Reading the input: one record, a list of records, or a page {"totalCount", "results": [...]}


class _Prepended(io.RawIOBase):
    """A byte stream that replays ``head`` and then reads on from ``rest`` (so stdin can be sniffed)."""

    def __init__(self, head, rest):
        self.head = memoryview(head)
        self.rest = rest

    def readable(self):
        return True

    def readinto(self, buffer):
        if len(self.head):
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _shape(head):
    """'list', 'page' or 'record', from the first bytes of the input."""
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not stripped:
        raise InputError("the input is empty")
    if stripped[:1] == b"[":
        return "list"
    if stripped[:1] != b"{":
        raise InputError("the input must be a JSON object or list, not %r..." % stripped[:20].decode(errors="replace"))
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(stripped)):
            if prefix == "" and event == "map_key":
                return "page" if value in ("results", "totalCount") else "record"
            if prefix == "" and event == "end_map":
                return "record"
    except ijson.JSONError:
        pass
    return "record"


def iter_records(stream):
    """Yield each record of a binary stream, without holding the whole input in memory."""
    head = stream.read(65536)
    if isinstance(head, str):
        raise InputError("open the input in binary mode")
    shape = _shape(head)
    source = io.BufferedReader(_Prepended(head, stream), buffer_size=65536)
    try:
        if shape == "record":
            yield json.loads(source.read())
            return
        yield from ijson.items(source, "item" if shape == "list" else "results.item", use_float=True)
    except (ijson.JSONError, ValueError) as exc:
        raise InputError("the input is not valid JSON: %s" % exc) from None


# ---------------------------------------------------------------------------------------------
# Upserting


def import_records(
    tenant, records, batch_size=500, progress=None, keep_outcomes=False, source="import", received_at=None,
    reader="thread",
):
    """Import an iterable of records into ``tenant``; returns an :class:`ImportResult`.

    The Macs a batch changed are announced (``devices.signals.computers_changed``, with ``source``) inside the
    batch's transaction, so their evaluation commits with them.

    ``progress(n)`` is called after each batch with the number of records it held. Report and
    check-in dates ahead of ``received_at`` (default: now) are stored as ``received_at``.

    ``reader``: where the records are read and mapped while the previous batch is written: "thread" (any
    iterable), or "process", a child process forked for the import (a second core for parsing and mapping; for a
    single-threaded caller such as ``manage.py import_inventory``, whose records come from a stream: the child
    reads it).
    """
    result = ImportResult()
    received_at = received_at or timezone.now()
    if reader == "process" and "fork" not in multiprocessing.get_all_start_methods():
        reader = "thread"
    batches = (_BatchesFromProcess if reader == "process" else _BatchesFromThread)(records, batch_size)
    with _fewer_collections(), batches:
        statistics_checked = False
        for batch in batches:
            _import_batch(tenant, batch, result, keep_outcomes, source, received_at)
            if progress:
                progress(len(batch))
            if not statistics_checked and result.created >= STATISTICS_AFTER:
                _gather_statistics()
                statistics_checked = True
        if batches.input_error:
            result.input_error = batches.input_error
    return result


STATISTICS_AFTER = 1000  # rows created by an import before it checks that PostgreSQL has statistics on the table


def _gather_statistics():
    """On PostgreSQL, ``ANALYZE`` the computers and users when their statistics predate most of their rows.

    Without statistics (a young table, and autovacuum's analyze runs at most once a minute) the planner takes the
    table for nearly empty, and looked each of a batch's Macs up through a (tenant, state) index, filtering
    every row of the tenant: 240 ms a batch at 3,500 Macs, against 2 ms by the (tenant, Jamf ID) key. Checked
    once an import has created ``STATISTICS_AFTER`` Macs; the statistics of a table that size take milliseconds.
    """
    if connection.vendor != "postgresql":
        return
    tables = [Computer._meta.db_table, UserAccount._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [tables[0]])
        (known,) = cursor.fetchone()
        table = connection.ops.quote_name(tables[0])
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %%s) AS rows" % table,  # noqa: S608 - model's
                       [4 * STATISTICS_AFTER])
        (present,) = cursor.fetchone()
        if known < present / 2:
            cursor.execute("ANALYZE %s" % ", ".join(map(connection.ops.quote_name, tables)))


_collections = {"imports": 0, "before": None}  # the threshold is the process's: shared by concurrent imports
_collections_lock = threading.Lock()


@contextlib.contextmanager
def _fewer_collections():
    """Run Python's cyclic garbage collector less often while importing.

    An import allocates millions of short-lived dicts and tuples (parsed records, mapped values, rows), none of
    them in reference cycles, so reference counting frees them; but every 700 allocations start a collection,
    and the older generations' collections walk every live object. That was a quarter of the import's CPU.
    Collections still happen (memory stays flat), 70 times less often.

    The threshold belongs to the process, and a threaded web worker runs imports side by side: the first import
    to start saves it and the last to end puts it back (each restoring its own would leave an overlapped pair's
    raised threshold in place for good).
    """
    with _collections_lock:
        if not _collections["imports"]:
            before = _collections["before"] = gc.get_threshold()
            gc.set_threshold(max(before[0], 50_000), *before[1:])
        _collections["imports"] += 1
    try:
        yield
    finally:
        with _collections_lock:
            _collections["imports"] -= 1
            if not _collections["imports"]:
                gc.set_threshold(*_collections["before"])


def _mapped(index, record):
    """(index, record, the mapped record or the MappingError that refused it), its source hash computed.

    The record itself is kept only when it was refused (its Jamf ID names it in the rejection)."""
    try:
        item = map_computer_record(record)
    except MappingError as exc:
        return index, record, exc
    item.source_hash  # noqa: B018 - computed here, off the writing thread (a cached property)
    return index, None, item


_END = "end"  # the reader's last message, after its batches: ("end", input error text or "")


def _read_batches(records, batch_size, put, stopped):
    """Read and map ``records``, handing ``put`` each batch, then (_END, input error) or the exception that
    ended the reading. Stops early once ``put`` returns False or ``stopped()`` is true."""
    batch = []
    index = 0
    input_error = ""
    records = iter(records)
    try:
        while not stopped():
            try:
                record = next(records)
            except StopIteration:
                break
            except InputError as exc:
                # Keep what was read before the damage; say where it stopped.
                input_error = "after record %d, %s" % (index - 1, exc) if index else str(exc)
                break
            batch.append(_mapped(index, record))
            index += 1
            if len(batch) >= batch_size:
                if not put(batch):
                    return
                batch = []
        if batch and not put(batch):
            return
        put((_END, input_error))
    except BaseException as exc:  # noqa: BLE001 - handed to the importing thread, which raises it
        put(exc)


class _Batches:
    """Batches of mapped records, read by someone else while the caller writes the previous batch.

    Reading (JSON parsing, or a Jamf Pro page) and mapping need no database; writing a batch mostly waits for
    it. Overlapping them keeps the process and the database busy at once. At most two batches wait, so memory
    stays flat. An :class:`InputError` ends the batches and is kept in ``input_error`` (what was read before it
    is imported); any other error of the records' iterator is raised to the caller. Leaving the ``with`` block
    early (the caller failed) stops the reader.
    """

    def __init__(self, records, batch_size):
        self.records = records
        self.batch_size = batch_size
        self.input_error = ""

    def _get(self):
        raise NotImplementedError

    def __iter__(self):
        while True:
            item = self._get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, tuple) and item[:1] == (_END,):
                self.input_error = item[1]
                return
            yield item


class _BatchesFromThread(_Batches):
    """The reader is a thread of this process (the GIL is free while the writer waits for the database)."""

    def __init__(self, records, batch_size):
        super().__init__(records, batch_size)
        self.queue = queue.Queue(maxsize=2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=_read_batches, name="import-reader", daemon=True,
                                       args=(records, batch_size, self._put, self.stopped.is_set))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        while self.thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)
        self.thread.join()

    def _put(self, item):
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self):
        return self.queue.get()


def _read_in_child(records, batch_size, connection_end):
    def put(item):
        try:
            data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an error that cannot be pickled: say what it was
            data = pickle.dumps(RuntimeError("%s: %s (%s)" % (type(item).__name__, item, exc)))
        connection_end.send_bytes(data)  # waits while the importer writes the batch before
        return True

    _read_batches(records, batch_size, put, lambda: False)
    connection_end.close()


class _BatchesFromProcess(_Batches):
    """The reader is a child process forked for this import: parsing and mapping get a core of their own.

    The child reads the records' iterator it inherited (a stream's file descriptor is shared) and sends each
    mapped batch through a pipe, pickled, one batch ahead; it touches no database. Only for callers without
    other threads (fork copies the calling thread alone).
    """

    def __init__(self, records, batch_size):
        super().__init__(records, batch_size)
        context = multiprocessing.get_context("fork")
        self.receiving, sending = context.Pipe(duplex=False)
        self.process = context.Process(target=_read_in_child, args=(records, batch_size, sending),
                                       name="import-reader", daemon=True)
        self.sending = sending

    def __enter__(self):
        self.process.start()
        self.sending.close()  # the child's end
        return self

    def __exit__(self, *exc_info):
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self.receiving.close()

    def _get(self):
        while not self.receiving.poll(1):
            if not self.process.is_alive() and not self.receiving.poll(0):
                return RuntimeError("the import's reader process ended unexpectedly (exit code %s)"
                                    % self.process.exitcode)
        try:
            return pickle.loads(self.receiving.recv_bytes())  # noqa: S301 - our own child's data
        except EOFError:
            return RuntimeError("the import's reader process ended unexpectedly (exit code %s)"
                                % self.process.exitcode)


CLAMPED_DATES = [("last_inventory_update", "general.reportDate"), ("last_check_in", "general.lastContactTime")]


def _clamp_dates(item, index, received_at, result):
    """Store dates ahead of the receipt as the receipt time, and say so in the result's notes.

    The clamped values go to ``item.clamped`` (applied when the row is written), not into ``item.computer``:
    the source hash stays that of the record as received, so sending it again is "unchanged".
    """
    item.clamped = {}
    for name, path in CLAMPED_DATES:
        raw = item.computer.get(name)
        value, clamped = clamp_to_receipt(raw, received_at)
        if clamped:
            item.clamped[name] = value
            if name == "last_inventory_update":
                item.report_date = value
            note = "record %d (Jamf ID %s): %s" % (index, item.jamf_id, clamp_note(path, raw, received_at))
            result.notes.append(note)


def _import_batch(tenant, batch, result, keep_outcomes, source, received_at):
    mapped = {}
    for index, record, item in batch:
        if isinstance(item, MappingError):
            jamf_id = record.get("id") if isinstance(record, dict) else None
            _reject(result, index, jamf_id, str(item), keep_outcomes)
            continue
        _clamp_dates(item, index, received_at, result)
        previous = mapped.get(item.jamf_id)
        if previous is not None:
            # The same computer twice in one batch: the newer report wins (the later one on a tie),
            # as it would across batches; the loser counts as stale.
            if _newer(previous[1], item):
                _count(result, index, item.jamf_id, "stale", keep_outcomes)
                continue
            _count(result, previous[0], item.jamf_id, "stale", keep_outcomes)
        mapped[item.jamf_id] = (index, item)
    if not mapped:
        return
    try:
        with transaction.atomic():
            outcomes = _upsert_and_announce(tenant, list(mapped.values()), source)
    except (IntegrityError, DatabaseError) as exc:
        logger.info("batch import into %s failed (%s); retrying record by record", tenant.slug, exc.__class__.__name__)
        outcomes = []
        for entry in mapped.values():
            try:
                with transaction.atomic():
                    outcomes.extend(_upsert_and_announce(tenant, [entry], source))
            except (IntegrityError, DatabaseError) as exc:
                outcomes.append((entry[0], entry[1].jamf_id, "rejected", _db_reason(exc), None))
    for index, jamf_id, outcome, reason, computer_id in sorted(outcomes):
        if outcome == "rejected":
            _reject(result, index, jamf_id, reason, keep_outcomes)
        else:
            _count(result, index, jamf_id, outcome, keep_outcomes)
            if outcome in ("created", "updated"):
                result.changed_ids.append(computer_id)


def _upsert_and_announce(tenant, entries, source):
    """Write entries and announce the Macs they changed, in the caller's transaction (the receivers' writes, such as
    the evaluation, commit with the inventory)."""
    outcomes, derived_ids = _upsert(tenant, entries)
    changed = [computer_id for _, _, outcome, _, computer_id in outcomes if outcome in ("created", "updated")]
    announce_computers_changed(tenant.pk, changed, source, derived_ids)
    return outcomes


def _newer(a, b):
    """True when mapped record ``a`` is strictly newer than ``b`` by report date."""
    return a.report_date is not None and b.report_date is not None and a.report_date > b.report_date


def _reject(result, index, jamf_id, reason, keep_outcomes):
    result.rejected.append(Rejection(index, str(jamf_id) if jamf_id is not None else "", reason))
    if keep_outcomes:
        result.outcomes.append((index, str(jamf_id or ""), "rejected", reason))


def _count(result, index, jamf_id, outcome, keep_outcomes):
    setattr(result, outcome, getattr(result, outcome) + 1)
    if keep_outcomes:
        result.outcomes.append((index, jamf_id, outcome, ""))


def _db_reason(exc):
    text = str(exc).lower()
    if "udid" in text:
        return "udid: another computer of this tenant already has this UDID"
    return "the database refused the record (%s)" % exc.__class__.__name__


def _upsert(tenant, entries):
    """Write the entries of one batch; returns ([(index, jamf_id, outcome, reason, computer_id)], derived IDs).

    New computers are written with the columns computers_creating's receivers derive for them (their
    evaluation), so each is written once; their IDs are the second value.

    New computers go in with one ``COPY`` (PostgreSQL), the others with one upsert per set of sections
    (a partial record writes only its sections' columns), and their user accounts likewise
    (devices/bulk.py: no model instances, the same rows as ``bulk_create`` would write).
    """
    jamf_ids = [item.jamf_id for _, item in entries]
    existing, udid_owner = _existing(tenant, jamf_ids, [item.udid for _, item in entries])
    now = timezone.now()
    outcomes = []
    created = []  # [(index, item)]
    groups = {}  # sections -> [(index, item)], the updates
    for index, item in entries:
        row = existing.get(item.jamf_id)
        if item.udid in udid_owner:
            reason = "udid: %s already belongs to the computer with Jamf ID %s" % (item.udid, udid_owner[item.udid])
            outcomes.append((index, item.jamf_id, "rejected", reason, None))
            continue
        if row is None:
            outcome = "created"
        elif (
            row.last_inventory_update is not None
            and item.report_date is not None
            and item.report_date < row.last_inventory_update
        ):
            outcomes.append((index, item.jamf_id, "stale", "", row.id))
            continue
        elif row.source_hash == item.source_hash:
            outcomes.append((index, item.jamf_id, "unchanged", "", row.id))
            continue
        else:
            outcome = "updated"
        values = {**item.computer, **getattr(item, "clamped", {})}
        if "company_portal_version" in values:
            seen = row.company_portal_seen_at if row else None
            values = {**values, "company_portal_seen_at": None if values["company_portal_version"] is None
                      else (seen or now)}
        item.values = values
        (created if outcome == "created" else groups.setdefault(item.sections, [])).append((index, item))

    writer = _writer(Computer)
    with_users = []
    derived_ids = set()  # created with the columns computers_creating's receivers derived

    def written(members, outcome, ids):
        if ids is None:  # a database that returns no keys from these statements: read them back
            ids = dict(Computer.objects.filter(tenant=tenant, jamf_id__in=[item.jamf_id for _, item in members])
                       .values_list("jamf_id", "id"))
        for index, item in members:
            pk = ids[item.jamf_id]
            outcomes.append((index, item.jamf_id, outcome, "", pk))
            users = item.users
            if outcome == "created":
                if item.derived:
                    derived_ids.add(pk)
                if users is not None:
                    users = [{**user, **columns} for user, columns in zip(users, item.derived_users, strict=True)]
            if users is not None:
                with_users.append((pk, outcome, users))

    def extra(item):
        return {"tenant_id": tenant.pk, "jamf_id": item.jamf_id, "udid": item.udid, "source_hash": item.source_hash,
                "created_at": now, "updated_at": now}

    def rows(members):
        return [writer.row(item.values, extra(item)) for _, item in members]

    if created:
        # What higher apps derive from a new Mac (its evaluation) is written with it: one write, not two.
        user_writer = _writer(UserAccount)
        full = [writer.full(item.values, extra(item)) for _, item in created]
        derived = derive_new_computers(tenant.pk, [
            {**values, "users": [user_writer.full(user, {}) for user in item.users or ()]}
            for values, (_, item) in zip(full, created, strict=True)
        ])
        rows_created = []
        for values, (_, item), (computer_columns, user_columns) in zip(full, created, derived, strict=True):
            rows_created.append(writer.row(values, writer.encoded(computer_columns)))
            item.derived = bool(computer_columns)
            item.derived_users = [user_writer.encoded(columns) for columns in user_columns]
        ids = writer.insert_new(rows_created)
        written(created, "created", None if ids is None else {
            item.jamf_id: pk for (_, item), pk in zip(created, ids, strict=True)})

    for members in groups.values():
        update_fields = sorted({"udid", "source_hash", "updated_at"} | set(members[0][1].values))
        returned = writer.upsert(rows(members), ("tenant_id", "jamf_id"), update_fields, returning=("jamf_id",))
        written(members, "updated", None if returned is None else dict(returned))
    if with_users:
        _sync_users(with_users)
    return outcomes, derived_ids


EXISTING_FIELDS = ("id", "jamf_id", "udid", "last_inventory_update", "source_hash", "company_portal_seen_at")


def _existing(tenant, jamf_ids, udids):
    """({jamf_id: stored row} for the batch's Macs, {udid: jamf_id} for other Macs holding one of its UDIDs)."""
    if connection.vendor == "postgresql":
        # One index lookup per key, whatever the planner's statistics say: during a tenant's first import its
        # rows are not in them yet, and "tenant_id = … AND (jamf_id IN … OR udid IN …)" was planned as a scan
        # of every row of the tenant for each batch (quadratic in the fleet: 85 ms a batch at 5,000 Macs).
        table = connection.ops.quote_name(Computer._meta.db_table)
        sql = (  # noqa: S608 - names from the model; the values are parameters
            "SELECT c.* FROM unnest(%s::text[], %s::text[]) AS k(jamf_id, udid) CROSS JOIN LATERAL ("
            " SELECT {0} FROM {1} WHERE tenant_id = %s AND jamf_id = k.jamf_id"
            " UNION ALL SELECT {0} FROM {1} WHERE tenant_id = %s AND udid = k.udid) AS c"
        ).format(", ".join(EXISTING_FIELDS), table)
        rows = select_sql(sql, [jamf_ids, udids, tenant.pk, tenant.pk], EXISTING_FIELDS)
    else:
        rows = select_rows(
            Computer.objects.filter(tenant=tenant).filter(Q(jamf_id__in=jamf_ids) | Q(udid__in=udids)), EXISTING_FIELDS
        )
    wanted = set(jamf_ids)
    existing, udid_owner = {}, {}
    for row in rows:
        if row.jamf_id in wanted:
            existing[row.jamf_id] = row
        else:
            udid_owner[row.udid] = row.jamf_id
    return existing, udid_owner


@functools.cache
def _writer(model):
    return RowWriter(model)


def _sync_users(with_users):
    """Make each computer's user accounts exactly the mapped ones, keeping the rows that stay."""
    updated_ids = [pk for pk, outcome, _ in with_users if outcome != "created"]
    if updated_ids:
        keep = {(pk, user["username"]) for pk, _, users in with_users for user in users}
        stale = [
            row_id
            for row_id, computer_id, username in UserAccount.objects.filter(computer_id__in=updated_ids).values_list(
                "id", "computer_id", "username"
            )
            if (computer_id, username) not in keep
        ]
        if stale:
            UserAccount.objects.filter(id__in=stale).delete()
    writer = _writer(UserAccount)
    new = [writer.row(user, {"computer_id": pk}) for pk, outcome, users in with_users if outcome == "created"
           for user in users]
    if new:
        writer.insert_new(new, keys=False)
    changed = [writer.row(user, {"computer_id": pk}) for pk, outcome, users in with_users if outcome != "created"
               for user in users]
    if changed:
        writer.upsert(changed, ("computer_id", "username"), USER_FIELDS)


# ---------------------------------------------------------------------------------------------
# Partial updates from Jamf Pro webhooks (devices/tasks.py): a check-in, or an event's summary
# when the tenant has no API credentials to fetch the full record.


def _find_computer(queryset, jamf_id="", udid="", serial_number=""):
    """The first computer matching the most specific identifier given, or None."""
    for field_name, value in (("jamf_id", jamf_id), ("udid", udid), ("serial_number", serial_number)):
        if value:
            return queryset.filter(**{field_name: value}).order_by("pk").first()
    return None


def _advance_check_in(computer_id, when, now):
    """Move one computer's last check-in to ``when`` unless it holds a newer one (newer timestamp wins)."""
    return bool(
        Computer.objects.filter(pk=computer_id)
        .filter(Q(last_check_in__isnull=True) | Q(last_check_in__lt=when))
        .update(last_check_in=when, updated_at=now)
    )


def record_check_in(tenant, when, jamf_id="", udid="", serial_number=""):
    """Move a computer's last check-in to ``when`` unless it already holds a newer one.

    Returns ``(computer_id, changed)``; ``(None, False)`` when no computer of the tenant matches.
    One targeted UPDATE: a check-in carries nothing else, so nothing else is touched.
    """
    found = _find_computer(Computer.objects.filter(tenant=tenant).only("id"), jamf_id, udid, serial_number)
    if found is None:
        return None, False
    with transaction.atomic():
        changed = _advance_check_in(found.pk, when, timezone.now())
        if changed:  # a check-in can move the Mac back from unresponsive
            announce_computers_changed(tenant.pk, [found.pk], "check_in")
    return found.pk, bool(changed)


def record_check_ins(tenant, check_ins):
    """Apply many check-ins at once: ``check_ins`` is a list of (jamf_id, when).

    Returns ``{jamf_id: (computer_id, changed)}`` for the Jamf IDs that match a computer of the
    tenant; the others are left to the caller. One lookup, one transaction of targeted UPDATEs with
    the "newer timestamp wins" guard, and one evaluation for the whole batch.
    """
    newest = {}
    for jamf_id, when in check_ins:
        if jamf_id and (jamf_id not in newest or when > newest[jamf_id]):
            newest[jamf_id] = when
    if not newest:
        return {}
    found = dict(
        Computer.objects.filter(tenant=tenant, jamf_id__in=list(newest)).values_list("jamf_id", "id")
    )
    results = {}
    changed_ids = []
    now = timezone.now()
    with transaction.atomic():
        for jamf_id, computer_id in found.items():
            changed = _advance_check_in(computer_id, newest[jamf_id], now)
            results[jamf_id] = (computer_id, changed)
            if changed:
                changed_ids.append(computer_id)
        announce_computers_changed(tenant.pk, changed_ids, "check_in")  # a check-in can end "unresponsive"
    return results


def apply_summary(tenant, summary, when, jamf_id=""):
    """Create or update a computer from a webhook's summary fields (Computer field -> value).

    Only the fields present are written. An update older than the stored inventory is ``stale``.
    The stored source hash is cleared, so the next full record is always written in full. Returns
    ``(outcome, computer_id, reason)`` with outcome created, updated, unchanged, stale or rejected. A change is
    announced in its transaction, so the Mac's evaluation commits with it.
    """
    try:
        return _apply_summary_and_announce(tenant, summary, when, jamf_id)
    except IntegrityError:
        # Another worker created the same Mac a moment ago (two events about a new Mac): now it is an update.
        return _apply_summary_and_announce(tenant, summary, when, jamf_id)


def _apply_summary_and_announce(tenant, summary, when, jamf_id):
    with transaction.atomic():
        outcome, computer_id, reason = _apply_summary(tenant, summary, when, jamf_id)
        if outcome in ("created", "updated"):
            announce_computers_changed(tenant.pk, [computer_id], "webhook")
    return outcome, computer_id, reason


def _apply_summary(tenant, summary, when, jamf_id):
    udid = summary.get("udid", "")
    values = {name: value for name, value in summary.items() if name != "udid" and value}
    with transaction.atomic():
        computer = _find_computer(
            Computer.objects.select_for_update().filter(tenant=tenant), jamf_id, udid, summary.get("serial_number")
        )
        if computer is None:
            if not (jamf_id and udid):
                return "rejected", None, "a new computer needs both its Jamf ID (jssID) and its UDID"
            owner = Computer.objects.select_for_update().filter(tenant=tenant, udid=udid).first()
            if owner is not None and owner.jamf_id != jamf_id:
                return "rejected", None, "udid: %s already belongs to the computer with Jamf ID %s" % (
                    udid, owner.jamf_id)
            computer = owner
        if computer is None:
            computer = Computer.objects.create(
                tenant=tenant, jamf_id=jamf_id, udid=udid, last_inventory_update=when, last_check_in=when, **values
            )
            return "created", computer.pk, ""
        if computer.last_inventory_update is not None and when < computer.last_inventory_update:
            return "stale", computer.pk, ""
        changes = {name: value for name, value in values.items() if getattr(computer, name) != value}
        if computer.last_inventory_update != when:
            changes["last_inventory_update"] = when
        if computer.last_check_in is None or computer.last_check_in < when:
            changes["last_check_in"] = when
        if not changes:
            return "unchanged", computer.pk, ""
        for name, value in changes.items():
            setattr(computer, name, value)
        computer.source_hash = ""
        computer.save(update_fields=[*changes, "source_hash", "updated_at"])
        return "updated", computer.pk, ""
