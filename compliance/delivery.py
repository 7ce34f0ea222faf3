"""Deliver the outbox to Intune, read back Intune's verdict, and provision tenants.

Delivery, per tenant (design sections 2, 6 and 9):

1. Rows left in ``sending`` by a worker that died return to ``pending`` once their lease has expired,
   keeping their message ID.
2. A worker claims due pending rows in a short transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so workers never take the same row; on SQLite the IMMEDIATE transaction holds the
   write lock from its first statement, which is as safe), packs up to ``INTUNE_BATCH_SIZE`` of them
   into one DataUploadMessage and stores its message ID and UploadTime on the rows. A row that was
   sent before keeps its message: the resend is the same PUT, and Intune applies a message ID once.
3. The PUT happens outside any transaction. 2xx: the rows are accepted. 400 (invalid) or 413 (too
   large): the message is split in halves under new IDs until the rows Intune refuses are alone, and
   those fail with Intune's detail (a single report still too large fails saying so).
   429, 5xx, timeouts, dropped connections, refused tokens: the rows wait ``next_attempt_at`` (the
   Retry-After, or an exponential backoff with jitter) and fail after ``INTUNE_DELIVERY_MAX_ATTEMPTS``.

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
from compliance.models import ComplianceReport
from portal.models import Tenant

logger = logging.getLogger(__name__)

Status = ComplianceReport.Status
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
    """Rows a dead worker left in ``sending`` go back to pending, keeping their message ID."""
    now = now or timezone.now()
    rows = ComplianceReport.objects.filter(status=Status.SENDING, lease_expires_at__lt=now)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    released = rows.update(status=Status.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now)
    if released:
        logger.warning("%d reports were left sending by a worker that stopped; they will be sent again", released)
    return released


def due(tenant_id, now=None):
    """The tenant's pending reports whose next attempt has come."""
    return ComplianceReport.objects.filter(
        tenant_id=tenant_id, status=Status.PENDING, next_attempt_at__lte=now or timezone.now()
    )


def next_attempt_due(tenant_id):
    """When the tenant's earliest pending report may be sent (None when none is pending)."""
    return ComplianceReport.objects.filter(tenant_id=tenant_id, status=Status.PENDING).aggregate(
        first=Min("next_attempt_at"))["first"]


def _prep(name, value):
    return ComplianceReport._meta.get_field(name).get_db_prep_value(value, connection)


def _as_datetime(value):
    if isinstance(value, str):  # SQLite returns the stored text
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def _sending(ids):
    """The rows of ``ids`` still sending. PostgreSQL takes the IDs as one array: Django prepares an ``IN`` list
    value by value, a noticeable part of a message's client time."""
    rows = ComplianceReport.objects.filter(status=Status.SENDING)
    if connection.vendor == "postgresql":
        return rows.extra(where=['"compliance_compliancereport"."id" = ANY(%s)'], params=[list(ids)])  # noqa: S610
    return rows.filter(id__in=ids)


def _accept(ids, now):
    """Rows of ``ids`` still sending end accepted (one statement, written out: the ORM's update of the same took a
    tenth of a message's client time); returns how many."""
    table = connection.ops.quote_name(ComplianceReport._meta.db_table)
    if connection.vendor == "postgresql":
        where, id_params = "id = ANY(%s)", [list(ids)]
    else:
        where, id_params = "id IN (%s)" % ", ".join(["%s"] * len(ids)), list(ids)
    sql = (
        "UPDATE %s SET status = %%s, sent_at = %%s, attempts = attempts + 1, lease_expires_at = NULL, "  # noqa: S608
        "next_attempt_at = NULL, error_code = '', error_detail = '', updated_at = %%s WHERE status = %%s AND %s"
        % (table, where)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_prep("status", Status.ACCEPTED), _prep("sent_at", now), _prep("updated_at", now),
                             _prep("status", Status.SENDING), *id_params])
        return cursor.rowcount


def content_of(payloads):
    """The DataUploadMessage Content from the stored payloads (each a JSON list), joined as text: no decoding."""
    parts = [text.strip()[1:-1].strip() for text in payloads]
    return "[" + ",".join(part for part in parts if part) + "]"


def claim(tenant_id, limit, now=None):
    """Claim up to ``limit`` due rows of a tenant in one statement; returns [Message].

    ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …``: on PostgreSQL concurrent
    workers skip each other's rows; on SQLite the IMMEDIATE transaction holds the write lock. Rows that
    were never sent join one new message (so ``limit`` should not exceed INTUNE_BATCH_SIZE); rows sent
    before keep their message ID and UploadTime, and are resent as that same message.
    """
    return claim_after(tenant_id, limit, now)[0]


def claim_after(tenant_id, limit, now=None, after=None):
    """:func:`claim`, and the outbox key ``(next_attempt_at, id)`` of the last row claimed (None when none was).

    ``after``, such a key (PostgreSQL only): claim only rows whose key is greater. The outbox index
    keeps an entry for every row that was pending until the table is vacuumed, so a claim that starts at
    the oldest entry steps over every row claimed before it in the run: 1,000 claims of 100,000 rows
    stepped over 50 million entries. A run passes its last key on (``TenantDelivery``) and looks from the
    start again only when nothing is left after it.
    """
    now = now or timezone.now()
    lease = now + datetime.timedelta(seconds=float(_setting("INTUNE_LEASE_SECONDS", 300)))
    new_id = uuid.uuid4()
    table = connection.ops.quote_name(ComplianceReport._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    payload = "payload::text" if postgresql else "payload"
    with transaction.atomic():
        # due(tenant_id, now), oldest first, written out: the ORM built and compiled it anew for every message.
        inner_sql = "SELECT id FROM %s WHERE tenant_id = %%s AND status = %%s AND next_attempt_at <= %%s" % (  # noqa: S608
            table)
        inner_params = [tenant_id, _prep("status", Status.PENDING), _prep("next_attempt_at", now)]
        if after is not None and postgresql:
            # A row comparison on the index's trailing columns: the scan starts at the key.
            inner_sql += " AND (next_attempt_at, id) > (%s, %s)"
            inner_params += [_prep("next_attempt_at", after[0]), after[1]]
        inner_sql += " ORDER BY next_attempt_at, id LIMIT %s"
        inner_params.append(int(limit))
        if connection.features.has_select_for_update_skip_locked:
            inner_sql += " FOR UPDATE SKIP LOCKED"
        # Only the table name and the subquery above are formatted in; every value is a parameter.
        sql = (
            "UPDATE %s SET status = %%s, lease_expires_at = %%s, updated_at = %%s, "  # noqa: S608
            "message_id = COALESCE(message_id, %%s), batched_at = COALESCE(batched_at, %%s) "
            "WHERE id IN (%s) RETURNING id, message_id, CAST(batched_at AS TEXT), attempts, %s, "
            "CAST(next_attempt_at AS TEXT)" % (table, inner_sql, payload)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [_prep("status", Status.SENDING), _prep("lease_expires_at", lease), _prep("updated_at", now),
                 _prep("message_id", new_id), _prep("batched_at", now), *inner_params],
            )
            rows = cursor.fetchall()
    messages = {}
    last = None
    # The two times come as text, parsed once per distinct value: a claim's rows share one or two of each, and
    # the driver's timestamp loader per row was a tenth of a message's client time.
    times = functools.lru_cache(maxsize=None)(_as_datetime)
    for pk, message_id, batched_at, attempts, text, next_attempt_at in sorted(rows):
        message_id = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
        message = messages.get(message_id)
        if message is None:
            message = messages[message_id] = Message(message_id, times(batched_at), [], attempts,
                                                     [] if message_id == new_id else None)
        message.row_ids.append(pk)
        message.attempts = max(message.attempts, attempts)
        if message.entities is not None:
            message.entities.append(text if isinstance(text, str) else json.dumps(text))
        key = (times(next_attempt_at), pk)
        if last is None or key > last:
            last = key
    result = list(messages.values())
    for message in result:
        if message.entities is not None:
            message.entities = content_of(message.entities)
    return result, last


def message_entities(message_id):
    """The Content of a message, rebuilt from all of its rows in order: a resend is the same message."""
    payloads = ComplianceReport.objects.filter(message_id=message_id).order_by("id").values_list("payload", flat=True)
    return content_of(json.dumps(payload) for payload in payloads)


def relax_commit():
    """PostgreSQL: let the current transaction commit without waiting for its WAL flush.

    Only for "accepted": if a database crash loses it, the rows return to pending after their lease and go
    again under the same message ID, which Intune applies once. (The claim, which fixes the message ID,
    keeps the durable commit.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


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
        batch_size = max(1, int(_setting("INTUNE_BATCH_SIZE", 100)))
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            messages = self._claim(batch_size)
            if not messages:
                return
            self.count("claimed", sum(len(m.row_ids) for m in messages))
            for index, message in enumerate(messages):
                if self.stop.is_set():
                    self._unclaim(messages[index:])
                    return
                self.send(message)

    def _claim(self, batch_size):
        """The next messages: first after the run's last claimed key, then (nothing left there) from the start."""
        with self.lock:
            after = self.claimed_up_to
        messages, last = claim_after(self.tenant.pk, batch_size, after=after)
        if not messages and after is not None:
            messages, last = claim_after(self.tenant.pk, batch_size)
        if last is not None:
            with self.lock:
                if self.claimed_up_to is None or last > self.claimed_up_to:
                    self.claimed_up_to = last
        return messages

    def _unclaim(self, messages):
        ids = [pk for message in messages for pk in message.row_ids]
        _sending(ids).update(
            status=Status.PENDING, lease_expires_at=None
        )

    def send(self, message):
        """PUT one message and record the answer on its rows."""
        entities = message.entities if message.entities is not None else message_entities(message.message_id)
        try:
            self._client().upload(message.message_id, entities, upload_time=message.batched_at)
        except IntuneError as exc:
            self._failed(message, exc, size=len(entities))
            return
        except Exception as exc:  # a bug must not leave rows sending until the lease expires
            logger.exception("sending message %s of %s failed", message.message_id, self.tenant.slug)
            self._backoff(message, explain(exc), stop=True)
            return
        now = timezone.now()
        with transaction.atomic():
            relax_commit()
            accepted = _accept(message.row_ids, now)
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
            failed = _sending(rows).update(
                status=Status.FAILED, attempts=F("attempts") + 1, lease_expires_at=None, next_attempt_at=None,
                error_code=intune_code(problem), error_detail=detail, finished_at=now, updated_at=now,
            )
            self.count("failed", failed)
            logger.warning("Intune refused report %s of %s: %s", rows[0], self.tenant.slug, problem.detail)
            return
        self.count("split", 1)
        # The refused message was not applied, so its rows may travel under new message IDs.
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            new_id = uuid.uuid4()
            _sending(part).update(
                message_id=new_id, batched_at=now, updated_at=now
            )
            self.send(Message(new_id, now, part, message.attempts))

    def _backoff(self, message, problem, stop=False):
        now = timezone.now()
        attempts = message.attempts + 1
        max_attempts = int(_setting("INTUNE_DELIVERY_MAX_ATTEMPTS", 12))
        rows = _sending(message.row_ids)
        if attempts >= max_attempts:
            count = rows.update(
                status=Status.FAILED, attempts=attempts, lease_expires_at=None, next_attempt_at=None,
                error_code=intune_code(problem), error_detail=problem.detail or problem.message, finished_at=now,
                updated_at=now,
            )
            self.count("failed", count)
        else:
            wait = backoff_seconds(attempts, problem.retry_after)
            count = rows.update(
                status=Status.PENDING, attempts=attempts, lease_expires_at=None,
                next_attempt_at=now + datetime.timedelta(seconds=wait),
                error_code=intune_code(problem), error_detail=problem.detail or problem.message, updated_at=now,
            )
            self.count("retry_later", count)
        with self.lock:
            self.result.errors.append("%s: %s" % (problem.code, problem.message))
            self.retryable_in_a_row += 1
            many = self.retryable_in_a_row >= STOP_AFTER_RETRYABLE
        if stop or many:
            self.result.stopped = "%s: %s" % (problem.code, problem.message)
            self.stop.set()

    def _stop_tenant(self, exc):
        """No client at all (no unexpired secret, settings missing): the due rows wait, with the reason."""
        problem = exc.problem
        self.result.errors.append("%s: %s" % (problem.code, problem.message))
        self.result.stopped = "%s: %s %s" % (problem.code, problem.message, problem.advice)
        now = timezone.now()
        wait = datetime.timedelta(seconds=backoff_seconds(3))
        due(self.tenant.pk, now).update(
            next_attempt_at=now + wait, error_code=problem.code, error_detail=problem.message, updated_at=now
        )


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
        ComplianceReport.objects.filter(tenant_id=tenant_id, status=Status.ACCEPTED)
        .order_by("message_id").values_list("message_id", flat=True).distinct()[:limit]
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
        counters["messages"] += 1
        if answer.status == "Completed":
            counters["completed"] += rows.update(status=Status.COMPLETED, finished_at=now, updated_at=now)
        elif answer.status == "Failed":
            counters["failed"] += rows.update(
                status=Status.FAILED, finished_at=now, error_code=answer.error_code[:100],
                error_detail=answer.error_detail, updated_at=now,
            )
            logger.warning("Intune failed message %s of %s: %s %s", message_id, tenant.slug, answer.error_code,
                           answer.error_detail)
        elif answer.status == "NotFound":
            counters["resend"] += rows.update(status=Status.PENDING, next_attempt_at=now, updated_at=now)
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
