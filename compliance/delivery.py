"""Deliver the outbox to Intune, read back Intune's verdict, and provision tenants.

Delivery, per tenant (design sections 2, 6 and 9):

0. ``queue_reports`` made each report with its message: every ``INTUNE_BATCH_SIZE`` new reports of a tenant
   share a message ID and UploadTime, and an :class:`~compliance.models.OutboxMessage` row tracks the
   message's delivery. So the delivery writes a report's row once, when Intune answers.
1. Messages left in flight by a worker that died are due again once their lease has expired, keeping
   their message ID.
2. A worker claims a due message (``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`` on the
   message rows on PostgreSQL, so workers never take the same message; on SQLite the IMMEDIATE
   transaction holds the write lock, which is as safe): it writes the message's lease and that it was
   claimed, then reads the message's pending reports. A message once claimed keeps its reports (a
   newer report no longer supersedes them): the resend is the same PUT, and Intune applies a message
   ID once.
3. The PUT happens outside any transaction. 2xx: the rows are accepted. 400 (invalid) or 413 (too
   large): the message is split in halves under new IDs until the rows Intune refuses are alone, and
   those fail with Intune's detail (a single report still too large fails saying so).
   429, 5xx, timeouts, dropped connections, refused tokens: the message waits ``next_attempt_at`` (the
   Retry-After, or an exponential backoff with jitter) and its rows fail after
   ``INTUNE_DELIVERY_MAX_ATTEMPTS``. A message whose rows are all finished (completed, failed) is deleted.

Every tenant is delivered by its own task, with a time budget, so one tenant's outage (its rows in
backoff, its calls timing out) never holds another tenant's reports.
"""

import datetime
import functools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from compliance.intune.errors import IntuneError, explain
from compliance.models import ComplianceReport, OutboxMessage
from devices.bulk import filter_in
from portal.models import Tenant

logger = logging.getLogger(__name__)

Status = ComplianceReport.Status
MessageStatus = OutboxMessage.Status
STOP_AFTER_RETRYABLE = 3  # consecutive retryable failures that end a tenant's run (it is probably down)
INTUNE_CODE_RE = re.compile(r"→ \d{3} ([A-Za-z][\w.]*):")


def _setting(name, default):
    return getattr(settings, name, default)


def backoff_seconds(attempts, retry_after=None, rng=random):
    """Seconds until the next attempt: Intune's Retry-After when it gave one, else exponential with jitter."""
    if retry_after is not None:
        return float(retry_after) * rng.uniform(1.0, 1.1)
    base = float(_setting("INTUNE_BACKOFF_BASE", 30))
    cap = float(_setting("INTUNE_BACKOFF_MAX", 3600))
    return min(cap, base * 2 ** max(0, attempts - 1)) * rng.uniform(0.5, 1.0)


@dataclass
class Message:
    """A DataUploadMessage being sent: its ID, UploadTime and the claimed rows in it."""

    message_id: uuid.UUID
    batched_at: object
    row_ids: list
    attempts: int
    entities: str | None = None  # the Content (a JSON string); None: rebuilt from every row of the message
    lease: object = None  # the lease this worker's claim wrote: it still holds the message while the row has it


def _held(message):
    """The message's row while this worker still holds it: pending, with the lease its claim wrote. A lease that ran
    out lets another worker claim the message (writing its own lease); the first worker's answer then changes
    neither the message nor its reports (only an accept does: Intune applied the message, whoever sent it)."""
    return OutboxMessage.objects.filter(id=message.message_id, status=MessageStatus.PENDING,
                                        lease_expires_at=message.lease)


@dataclass
class DeliveryResult:
    tenant_id: int
    counters: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    stopped: str = ""

    @property
    def ok(self):
        return not self.errors

    def as_dict(self):
        data = dict(self.counters)
        if self.stopped:
            data["stopped"] = self.stopped
        return data


def release_expired_leases(tenant_id=None, now=None):
    """Messages a dead worker left in flight are due again, keeping their ID (the resend is the same PUT)."""
    now = now or timezone.now()
    messages = OutboxMessage.objects.filter(status=MessageStatus.PENDING, lease_expires_at__lt=now)
    if tenant_id is not None:
        messages = messages.filter(tenant_id=tenant_id)
    released = messages.update(next_attempt_at=now, lease_expires_at=None)
    if released:
        logger.warning("%d messages were left in flight by a worker that stopped; they will be sent again", released)
    return released


def due(tenant_id, now=None):
    """The tenant's messages whose next attempt has come and that no worker holds."""
    return OutboxMessage.objects.filter(
        tenant_id=tenant_id, status=MessageStatus.PENDING, lease_expires_at__isnull=True,
        next_attempt_at__lte=now or timezone.now(),
    )


def due_reports(tenant_id, now=None):
    """The pending reports of :func:`due` messages (the amount a delivery run has before it)."""
    return ComplianceReport.objects.filter(
        tenant_id=tenant_id, status=Status.PENDING, message_id__in=due(tenant_id, now).values("id")
    )


def next_attempt_due(tenant_id):
    """When the tenant's earliest waiting message may be sent (None when none is waiting)."""
    return OutboxMessage.objects.filter(
        tenant_id=tenant_id, status=MessageStatus.PENDING, lease_expires_at__isnull=True
    ).aggregate(first=Min("next_attempt_at"))["first"]


def _prep(name, value, model=ComplianceReport):
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def _as_datetime(value):
    if isinstance(value, str):  # SQLite returns the stored text
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def _as_uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _id_in(column, ids, field="id", model=ComplianceReport):
    """``column`` in ``ids`` as SQL and parameters. PostgreSQL takes the IDs as one array: Django prepares an ``IN``
    list value by value, a noticeable part of a message's client time."""
    if connection.vendor == "postgresql":
        return "%s = ANY(%%s)" % column, [list(ids)]
    return "%s IN (%s)" % (column, ", ".join(["%s"] * len(ids))), [_prep(field, i, model) for i in ids]


def _pending(ids):
    """The rows of ``ids`` still pending (a message's reports, until Intune answers)."""
    return filter_in(ComplianceReport.objects.filter(status=Status.PENDING), "id", ids)


def _accept(message_id, ids, now):
    """The message's rows still pending end accepted, and the message waits for Intune's verdict; returns how many
    rows. Written out (the ORM's update of the same took a tenth of a message's client time).

    On PostgreSQL it is one statement, so one transaction of its own, committed without waiting for its WAL flush
    (``synchronous_commit`` off for it alone): if a database crash loses it, the message comes back after its lease
    and is resent under the same ID, which Intune applies once. (The claim keeps the durable commit.) A round trip
    a message instead of five (begin, setting, two updates, commit).
    """
    reports = connection.ops.quote_name(ComplianceReport._meta.db_table)
    messages = connection.ops.quote_name(OutboxMessage._meta.db_table)
    where, id_params = _id_in("id", ids)
    reports_sql = (
        "UPDATE %s SET status = %%s, sent_at = %%s, attempts = attempts + 1, next_attempt_at = NULL, "  # noqa: S608
        "error_code = '', error_detail = '', updated_at = %%s WHERE status = %%s AND %s" % (reports, where)
    )
    reports_params = [_prep("status", Status.ACCEPTED), _prep("sent_at", now), _prep("updated_at", now),
                      _prep("status", Status.PENDING), *id_params]
    message_sql = (
        "UPDATE %s SET status = %%s, sent_at = %%s, attempts = attempts + 1, next_attempt_at = NULL, "  # noqa: S608
        "lease_expires_at = NULL WHERE id = %%s" % messages
    )
    message_params = [MessageStatus.ACCEPTED.value, _prep("sent_at", now, OutboxMessage),
                      _prep("id", message_id, OutboxMessage)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)), "  # noqa: S608
                "accepted AS (" + reports_sql + " RETURNING 1), message AS (" + message_sql + " RETURNING 1) "
                "SELECT (SELECT count(*) FROM accepted), (SELECT count(*) FROM relaxed), "
                "(SELECT count(*) FROM message)",
                [*reports_params, *message_params],
            )
            return cursor.fetchone()[0]
        with transaction.atomic():
            cursor.execute(reports_sql, reports_params)
            accepted = cursor.rowcount
            cursor.execute(message_sql, message_params)
        return accepted


def content_of(payloads):
    """The DataUploadMessage Content from the stored payloads (each a JSON list), joined as text: no decoding."""
    parts = [text.strip()[1:-1].strip() for text in payloads]
    return "[" + ",".join(part for part in parts if part) + "]"


def _lease(now):
    return now + datetime.timedelta(seconds=float(_setting("INTUNE_LEASE_SECONDS", 300)))


def claim(tenant_id, limit, now=None):
    """Claim up to ``limit`` due messages of a tenant; returns [Message], each with its pending reports.

    ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …`` on the message rows: on PostgreSQL
    concurrent workers skip each other's messages; on SQLite the IMMEDIATE transaction holds the write lock. The
    claim writes the message row alone (its lease, and that it was claimed): the reports were given their
    message ID and UploadTime when they were made, so a resend is the same PUT, and a claim lost with its
    worker leaves nothing to repair but the lease. A message left without pending reports (all superseded
    before it was first claimed) is dropped.
    """
    return claim_after(tenant_id, limit, now)[0]


def claim_after(tenant_id, limit, now=None, after=None):
    """:func:`claim`, and the outbox key ``(next_attempt_at, id)`` of the last message claimed (None when none was).

    ``after``, such a key (PostgreSQL only): claim only messages whose key is greater. The outbox index keeps an
    entry for every message that was due until the table is vacuumed, so a claim that starts at the oldest
    entry steps over every message claimed before it in the run. A run passes its last key on
    (``TenantDelivery``) and looks from the start again only when nothing is left after it.
    """
    now = now or timezone.now()
    lease = _lease(now)
    messages_table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    inner_sql = (
        "SELECT id FROM %s WHERE tenant_id = %%s AND status = %%s AND lease_expires_at IS NULL "  # noqa: S608
        "AND next_attempt_at <= %%s" % messages_table
    )
    inner_params = [tenant_id, MessageStatus.PENDING.value, _prep("next_attempt_at", now, OutboxMessage)]
    if after is not None and postgresql:
        # A row comparison on the index's trailing columns: the scan starts at the key.
        inner_sql += " AND (next_attempt_at, id) > (%s, %s)"
        inner_params += [_prep("next_attempt_at", after[0], OutboxMessage), _prep("id", after[1], OutboxMessage)]
    inner_sql += " ORDER BY next_attempt_at, id LIMIT %s"
    inner_params.append(int(limit))
    if connection.features.has_select_for_update_skip_locked:
        inner_sql += " FOR UPDATE SKIP LOCKED"
    # Only the table names and the subquery above are formatted in; every value is a parameter.
    sql = (
        "UPDATE %s SET lease_expires_at = %%s, claimed = %%s WHERE id IN (%s) "  # noqa: S608
        "RETURNING id, CAST(upload_time AS TEXT), attempts, CAST(next_attempt_at AS TEXT)"
        % (messages_table, inner_sql)
    )
    params = [_prep("lease_expires_at", lease, OutboxMessage), True, *inner_params]
    reports_table = connection.ops.quote_name(ComplianceReport._meta.db_table)
    # The two times come as text, parsed once per distinct value: a claim's messages share one or two of each.
    times = functools.lru_cache(maxsize=None)(_as_datetime)
    messages, last = {}, None

    def claimed_message(message_id, upload_time, attempts, next_attempt_at):
        nonlocal last
        message = messages[message_id] = Message(message_id, times(upload_time), [], attempts, [], lease)
        key = (times(next_attempt_at), message_id)
        if last is None or key > last:
            last = key
        return message

    with connection.cursor() as cursor:
        if postgresql:
            # One statement: the claim, and the pending reports of the messages it took (read with the statement's
            # snapshot; the claim changes no report).
            cursor.execute(
                "WITH claimed AS (" + sql + ") SELECT c.id, CAST(c.upload_time AS TEXT), c.attempts, "  # noqa: S608
                "CAST(c.next_attempt_at AS TEXT), r.id, r.payload::text FROM claimed c LEFT JOIN " + reports_table
                + " r ON r.message_id = c.id AND r.status = %s ORDER BY c.id, r.id",
                [*params, _prep("status", Status.PENDING)],
            )
            for message_id, upload_time, attempts, next_attempt_at, pk, text in cursor.fetchall():
                message = messages.get(message_id) or claimed_message(message_id, upload_time, attempts,
                                                                      next_attempt_at)
                if pk is not None:
                    message.row_ids.append(pk)
                    message.entities.append(text)
        else:
            with transaction.atomic():
                cursor.execute(sql, params)
                claimed = cursor.fetchall()
            for message_id, upload_time, attempts, next_attempt_at in claimed:
                claimed_message(_as_uuid(message_id), upload_time, attempts, next_attempt_at)
            if messages:
                where, id_params = _id_in("message_id", list(messages), "message_id")
                cursor.execute(
                    "SELECT message_id, id, payload FROM %s WHERE status = %%s AND %s ORDER BY id" % (  # noqa: S608
                        reports_table, where),
                    [_prep("status", Status.PENDING), *id_params],
                )
                for message_id, pk, text in cursor.fetchall():
                    message = messages[_as_uuid(message_id)]
                    message.row_ids.append(pk)
                    message.entities.append(text if isinstance(text, str) else json.dumps(text))
    if not messages:
        return [], None
    empty = [message_id for message_id, message in messages.items() if not message.row_ids]
    if empty:
        OutboxMessage.objects.filter(id__in=empty).delete()
    result = [message for message in messages.values() if message.row_ids]
    for message in result:
        message.entities = content_of(message.entities)
    return result, last


def message_entities(message_id):
    """The Content of a message, rebuilt from all of its rows in order."""
    payloads = ComplianceReport.objects.filter(message_id=message_id).order_by("id").values_list("payload", flat=True)
    return content_of(json.dumps(payload) for payload in payloads)


def intune_code(problem):
    """Intune's own error code from a problem's detail ("PUT … → 400 BadRequest: …"), else ours."""
    match = INTUNE_CODE_RE.search(problem.detail or "")
    return match.group(1) if match else problem.code


class TenantDelivery:
    """Sends one tenant's due reports: claim, PUT, record, until none is due or the time budget is spent."""

    def __init__(self, tenant, client=None, budget=None, concurrency=None, progress=None):
        self.tenant = tenant
        self.client = client
        self.budget = float(_setting("INTUNE_DELIVERY_TIME_BUDGET", 240) if budget is None else budget)
        if concurrency is None:
            concurrency = _setting("INTUNE_DELIVERY_CONCURRENCY", 4)
        if connection.vendor == "sqlite":
            concurrency = 1  # one writer at a time: more threads would only queue for the lock
        self.concurrency = max(1, int(concurrency))
        self.progress = progress
        self.result = DeliveryResult(tenant.pk)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.retryable_in_a_row = 0
        self.deadline = None
        self.claimed_up_to = None  # the outbox key of the last row claimed in this run (claim_after)

    def _client(self):
        if self.client is None:
            from compliance.intune.client import IntuneClient

            self.client = IntuneClient.from_tenant(
                self.tenant,
                max_retries=_setting("INTUNE_DELIVERY_HTTP_RETRIES", 2),
                max_retry_wait=_setting("INTUNE_DELIVERY_MAX_RETRY_WAIT", 10),
            )
        return self.client

    def count(self, key, n=1):
        with self.lock:
            self.result.counters[key] += n

    def run(self):
        self.deadline = time.monotonic() + self.budget
        self.count("released", release_expired_leases(self.tenant.pk))
        try:
            self._client()
        except IntuneError as exc:
            self._stop_tenant(exc)
            return self.result
        if self.concurrency == 1:
            self._loop()
        else:
            threads = [threading.Thread(target=self._thread, name="deliver-%s-%d" % (self.tenant.slug, i))
                       for i in range(self.concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return self.result

    def _thread(self):
        try:
            self._loop()
        except Exception:
            logger.exception("delivery thread for %s failed", self.tenant.slug)
            with self.lock:
                self.result.errors.append("unexpected error (see the log)")
            self.stop.set()
        finally:
            close_old_connections()
            connection.close()

    def _loop(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            messages = self._claim(1)  # a message at a time: the threads share out the tenant's messages
            if not messages:
                return
            self.count("claimed", sum(len(m.row_ids) for m in messages))
            for index, message in enumerate(messages):
                if self.stop.is_set():
                    self._unclaim(messages[index:])
                    return
                self.send(message)

    def _claim(self, limit):
        """The next messages: first after the run's last claimed key, then (nothing left there) from the start."""
        with self.lock:
            after = self.claimed_up_to
        messages, last = claim_after(self.tenant.pk, limit, after=after)
        if not messages and after is not None:
            messages, last = claim_after(self.tenant.pk, limit)
        if last is not None:
            with self.lock:
                if self.claimed_up_to is None or last > self.claimed_up_to:
                    self.claimed_up_to = last
        return messages

    def _unclaim(self, messages):
        for message in messages:
            _held(message).update(lease_expires_at=None)

    def _lost(self, message, what):
        """This worker's lease on ``message`` ran out and another worker claimed it: the other one records it."""
        self.count("lease_lost", 1)
        logger.warning("message %s of %s was claimed again after this worker's lease ran out; %s is left to the "
                       "other worker", message.message_id, self.tenant.slug, what)

    def send(self, message):
        """PUT one message and record the answer on its rows."""
        entities = message.entities if message.entities is not None else message_entities(message.message_id)
        try:
            self._client().upload(message.message_id, entities, upload_time=message.batched_at)
        except IntuneError as exc:
            self._failed(message, exc, size=len(entities))
            return
        except Exception as exc:  # a bug must not leave the message in flight until the lease expires
            logger.exception("sending message %s of %s failed", message.message_id, self.tenant.slug)
            self._backoff(message, explain(exc), stop=True)
            return
        accepted = _accept(message.message_id, message.row_ids, timezone.now())
        with self.lock:
            self.retryable_in_a_row = 0
            self.result.counters["messages"] += 1
            self.result.counters["accepted"] += accepted
        if self.progress:
            self.progress(accepted)

    def _failed(self, message, exc, size=0):
        problem = exc.problem
        if problem.status in (400, 413):  # invalid, or too large: either way split until the culprit is alone
            self._bad_request(message, problem, size)
        else:
            # Token refused or expired twice, not provisioned, forbidden: the tenant's setup, not this message.
            self._backoff(message, problem, stop=not problem.retryable)

    def _bad_request(self, message, problem, size=0):
        """Intune refused the message as invalid or too large: split it until the refused rows are alone, and
        fail those."""
        now = timezone.now()
        rows = message.row_ids
        if len(rows) == 1:
            detail = problem.detail
            if problem.status == 413:
                detail = (
                    "Not sent: this report alone is larger than Intune accepts in one message (its Content is "
                    "%d bytes). Intune answered: %s" % (size, problem.detail)
                )
            with transaction.atomic():
                if not _held(message).delete()[0]:
                    self._lost(message, "Intune's refusal")
                    return
                failed = _pending(rows).update(
                    status=Status.FAILED, attempts=F("attempts") + 1, next_attempt_at=None,
                    error_code=intune_code(problem), error_detail=detail, finished_at=now, updated_at=now,
                )
            self.count("failed", failed)
            logger.warning("Intune refused report %s of %s: %s", rows[0], self.tenant.slug, problem.detail)
            return
        # The refused message was not applied, so its rows may travel under new message IDs: two messages that this
        # worker holds, each leased afresh just before it is sent (sending the first half may outlast a lease).
        half = len(rows) // 2
        parts = [Message(uuid.uuid4(), now, rows[:half], message.attempts, None, _lease(now)),
                 Message(uuid.uuid4(), now, rows[half:], message.attempts, None, _lease(now))]
        with transaction.atomic():
            if not _held(message).delete()[0]:
                self._lost(message, "splitting it")
                return
            OutboxMessage.objects.bulk_create([
                OutboxMessage(id=part.message_id, tenant_id=self.tenant.pk, upload_time=now, claimed=True,
                              attempts=message.attempts, next_attempt_at=now, lease_expires_at=part.lease)
                for part in parts
            ])
            for part in parts:
                _pending(part.row_ids).filter(message_id=message.message_id).update(
                    message_id=part.message_id, batched_at=now, updated_at=now)
        self.count("split", 1)
        for part in parts:
            fresh = _lease(timezone.now())
            if self.stop.is_set() or not _held(part).update(lease_expires_at=fresh):
                if self.stop.is_set():
                    self._unclaim([part])
                else:
                    self._lost(part, "sending it")
                continue
            part.lease = fresh
            self.send(part)  # its Content: message_entities

    def _backoff(self, message, problem, stop=False):
        now = timezone.now()
        attempts = message.attempts + 1
        max_attempts = int(_setting("INTUNE_DELIVERY_MAX_ATTEMPTS", 12))
        rows = _pending(message.row_ids)
        detail = problem.detail or problem.message
        with transaction.atomic():
            if attempts >= max_attempts:
                if _held(message).delete()[0]:
                    count = rows.update(
                        status=Status.FAILED, attempts=attempts, next_attempt_at=None,
                        error_code=intune_code(problem), error_detail=detail, finished_at=now, updated_at=now,
                    )
                    self.count("failed", count)
                else:
                    self._lost(message, "its failure")
            else:
                retry_at = now + datetime.timedelta(seconds=backoff_seconds(attempts, problem.retry_after))
                # The message carries the schedule; the reports, the attempt and the error for the history.
                if _held(message).update(attempts=attempts, next_attempt_at=retry_at, lease_expires_at=None):
                    count = rows.update(attempts=attempts, next_attempt_at=retry_at,
                                        error_code=intune_code(problem), error_detail=detail, updated_at=now)
                    self.count("retry_later", count)
                else:
                    self._lost(message, "its retry")
        with self.lock:
            self.result.errors.append("%s: %s" % (problem.code, problem.message))
            self.retryable_in_a_row += 1
            many = self.retryable_in_a_row >= STOP_AFTER_RETRYABLE
        if stop or many:
            self.result.stopped = "%s: %s" % (problem.code, problem.message)
            self.stop.set()

    def _stop_tenant(self, exc):
        """No client at all (no unexpired secret, settings missing): the due messages wait, with the reason."""
        problem = exc.problem
        self.result.errors.append("%s: %s" % (problem.code, problem.message))
        self.result.stopped = "%s: %s %s" % (problem.code, problem.message, problem.advice)
        now = timezone.now()
        wait = datetime.timedelta(seconds=backoff_seconds(3))
        with transaction.atomic():
            due_reports(self.tenant.pk, now).update(
                next_attempt_at=now + wait, error_code=problem.code, error_detail=problem.message, updated_at=now
            )
            due(self.tenant.pk, now).update(next_attempt_at=now + wait)


def deliver_tenant(tenant_id, client=None, budget=None, concurrency=None, progress=None):
    """Send a tenant's due reports; returns a :class:`DeliveryResult` (nothing when Intune is disabled)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if not (tenant.is_active and tenant.intune_enabled):
        result = DeliveryResult(tenant_id)
        result.stopped = "Intune integration disabled"
        return result
    return TenantDelivery(tenant, client=client, budget=budget, concurrency=concurrency, progress=progress).run()


# -- Intune's verdict ---------------------------------------------------------------------------


class PollCounters(Counter):
    error = ""


def poll_status(tenant_id, client=None, limit=None):
    """Read back accepted messages (DataUploadMessages GET): rows end completed, or failed with ErrorCode/Detail.

    A message Intune does not know (never received) goes back to pending with the same ID; one still
    Processing is asked again next time. Returns a counters dict.
    """
    from compliance.intune.client import IntuneClient

    counters = PollCounters()
    tenant = Tenant.objects.get(pk=tenant_id)
    limit = limit or int(_setting("INTUNE_STATUS_POLL_LIMIT", 2000))
    message_ids = list(
        OutboxMessage.objects.filter(tenant_id=tenant_id, status=MessageStatus.ACCEPTED)
        .order_by("sent_at", "id").values_list("id", flat=True)[:limit]
    )
    if not message_ids:
        return counters
    client = client or IntuneClient.from_tenant(
        tenant, max_retries=_setting("INTUNE_DELIVERY_HTTP_RETRIES", 2),
        max_retry_wait=_setting("INTUNE_DELIVERY_MAX_RETRY_WAIT", 10),
    )
    for message_id in message_ids:
        try:
            answer = client.message_status(message_id)
        except IntuneError as exc:  # ends this poll; the next one resumes where it stopped
            counters["errors"] += 1
            counters.error = "%s: %s" % (exc.problem.code, exc.problem.message)
            logger.warning("reading Intune's status for %s failed: %s", tenant.slug, exc.problem.detail)
            break
        now = timezone.now()
        rows = ComplianceReport.objects.filter(message_id=message_id, status=Status.ACCEPTED)
        message = OutboxMessage.objects.filter(id=message_id, status=MessageStatus.ACCEPTED)
        counters["messages"] += 1
        with transaction.atomic():
            if answer.status == "Completed":
                counters["completed"] += rows.update(status=Status.COMPLETED, finished_at=now, updated_at=now)
                message.delete()
            elif answer.status == "Failed":
                counters["failed"] += rows.update(
                    status=Status.FAILED, finished_at=now, error_code=answer.error_code[:100],
                    error_detail=answer.error_detail, updated_at=now,
                )
                message.delete()
                logger.warning("Intune failed message %s of %s: %s %s", message_id, tenant.slug,
                               answer.error_code, answer.error_detail)
            elif answer.status == "NotFound":
                counters["resend"] += rows.update(status=Status.PENDING, next_attempt_at=now, updated_at=now)
                message.update(status=MessageStatus.PENDING, next_attempt_at=now, sent_at=None)
            else:
                counters["processing"] += 1
    return counters


# -- Provisioning -------------------------------------------------------------------------------


def landing_urls(tenant):
    """This portal's landing pages for the tenant: Intune's enrollment and remediation URLs."""
    from django.urls import reverse

    base = settings.PORTAL_BASE_URL.rstrip("/")
    return (base + reverse("landing", args=[tenant.slug]), base + reverse("landing-remediation", args=[tenant.slug]))


def apply_provisioning(tenant_id, client=None):
    """Make Intune match ``Tenant.intune_enabled``: provision and ensure the partner policy, or deprovision.

    Disabling also cancels the reports not sent yet; the configuration stays. Safe to run twice.
    """
    from compliance.intune.client import IntuneClient
    from compliance.outbox import cancel_pending

    tenant = Tenant.objects.get(pk=tenant_id)
    counters = {}
    if not tenant.connection_configured:
        counters["skipped"] = "not configured"
        return counters
    client = client or IntuneClient.from_tenant(tenant)
    if tenant.intune_enabled and tenant.is_active:
        enrollment, remediation = landing_urls(tenant)
        client.provision(enrollment, remediation)
        policy = client.ensure_partner_policy(tenant.partner_policy_group_ids or [])
        counters.update({"provisioned": 1, "policy": policy.id, "policy_created": int(policy.created),
                         "groups": len(policy.assigned)})
    else:
        client.deprovision()
        counters.update({"deprovisioned": 1, "cancelled": cancel_pending(tenant.pk, "Intune integration disabled")})
    return counters
