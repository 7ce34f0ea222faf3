"""django-q2 tasks for inventory: process a stored webhook event, and pull from the Jamf Pro API.

Tasks take IDs and call plain functions. Every task is safe to run twice: an event that is no
longer pending (or failed) is left alone, writes are upserts with a "newer timestamp wins" guard.
The writes go through ``devices.importer``, which announces the computers it changed (``devices.signals``).
"""

import datetime
import hashlib
import logging
from collections import Counter

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from devices.importer import apply_summary, import_records, record_check_in, record_check_ins
from devices.jamf.client import JamfClient, JamfError
from devices.jamf.webhook import WebhookError, parse_webhook
from devices.models import InventoryEvent
from devices.pull import pull_inventory
from devices.timestamps import clamp_note, clamp_to_receipt
from portal import lanes
from portal.models import Tenant

logger = logging.getLogger(__name__)

STALE_PENDING_AFTER = datetime.timedelta(minutes=1)
DRAIN_BATCH = 500
DRAIN_LANE = "drain"
Status = InventoryEvent.Status


_clients = {}  # (tenant id, connection settings) -> JamfClient, per worker process


def client_for(tenant):
    """A Jamf Pro client for the tenant, kept per worker process so its token is reused across events.

    Keyed by the connection settings too, so a changed URL or secret gets a new client at once.
    """
    key = (tenant.pk, tenant.jamf_url, tenant.jamf_client_id, hashlib.sha256(
        tenant.jamf_client_secret.encode()).hexdigest(), tenant.jamf_api_version)
    client = _clients.get(key)
    if client is None:
        for old_key in [k for k in _clients if k[0] == tenant.pk]:
            _clients.pop(old_key).close()
        client = _clients[key] = JamfClient.from_tenant(tenant)
    return client


def _finish(event, status, error="", computer_id=None):
    event.status = status
    event.error = error
    event.processed_at = timezone.now()
    fields = ["status", "error", "processed_at"]
    if computer_id is not None:
        event.computer_id = computer_id
        fields.append("computer")
    event.save(update_fields=fields)
    return status


def apply_event(event, client=None):
    """Apply one stored webhook event; returns its new status."""
    try:
        parsed = parse_webhook(event.raw_body.encode("utf-8"))
    except WebhookError as exc:  # stored before a parser change, say
        return _finish(event, Status.REJECTED, str(exc))
    if parsed.action == "ignored":
        return _finish(event, Status.IGNORED, "Not an event the portal acts on.")
    tenant = event.tenant
    when, clamped = _event_time(event, parsed)
    clamp = clamp_note("webhook.eventTimestamp", parsed.timestamp, event.received_at) if clamped else ""
    ids = {"jamf_id": parsed.jamf_id, "udid": parsed.udid, "serial_number": parsed.serial_number}
    if not any(ids.values()):
        return _finish(event, Status.IGNORED, "The event names no computer (no jssID, UDID or serial number).")

    if parsed.action == "check_in":
        computer_id, changed = record_check_in(tenant, when, **ids)
        if computer_id is not None:
            error = "" if changed else "A newer check-in is already stored."
            return _finish(event, Status.PROCESSED, _join(clamp, error), computer_id)
        if not (tenant.has_jamf_api and parsed.jamf_id):
            return _finish(event, Status.IGNORED, "No computer with these identifiers yet; the next pull adds it.")
        # A Mac the portal has not seen yet: fetch it like an inventory event.

    if tenant.has_jamf_api and parsed.jamf_id:
        try:
            record = (client or client_for(tenant)).get_computer(parsed.jamf_id)
        except JamfError as exc:
            return _finish(event, Status.FAILED, "Jamf Pro API: %s The next pull brings the change." % exc)
        if record is None:
            return _finish(event, Status.IGNORED, "Jamf Pro has no computer %s (deleted since?)." % parsed.jamf_id)
        result = import_records(tenant, [record])
        if result.rejected:
            return _finish(event, Status.FAILED, "The full record was rejected: %s" % result.rejected[0].reason)
        computer_id = tenant.computers.filter(jamf_id=parsed.jamf_id).values_list("id", flat=True).first()
        note = "" if result.changed_ids else ("Stale: a newer inventory is stored." if result.stale else "Unchanged.")
        return _finish(event, Status.PROCESSED, _join(*result.notes, note), computer_id)

    outcome, computer_id, reason = apply_summary(tenant, parsed.summary, when, jamf_id=parsed.jamf_id)
    if outcome == "rejected":
        return _finish(event, Status.IGNORED, "Summary not applied: %s." % reason)
    note = {"stale": "Stale: a newer inventory is stored.", "unchanged": "Unchanged."}.get(outcome, "")
    note = (note + " Summary fields only: set Jamf Pro API credentials for full records.").strip()
    return _finish(event, Status.PROCESSED, _join(clamp, note), computer_id)


def _event_time(event, parsed):
    """The event's time: its eventTimestamp, but never further ahead of its receipt than the allowed skew."""
    if parsed.timestamp is None:
        return event.received_at, False
    return clamp_to_receipt(parsed.timestamp, event.received_at)


def _join(*notes):
    return " ".join(note for note in notes if note)


def process_event(event_id):
    """Task: process one stored webhook event (queued by the receiver)."""
    # No lock is held across the Jamf Pro call (on SQLite a transaction would block intake): applying
    # an event twice is harmless, the writes being upserts with a newer-timestamp-wins guard.
    event = (
        InventoryEvent.objects.select_related("tenant")
        .filter(pk=event_id, status__in=[Status.PENDING, Status.FAILED])
        .first()
    )
    if event is None:
        return "skipped"  # already processed
    return apply_event(event)


def queue_drain(tenant_id):
    """Ask for a drain of the tenant's pending webhook events (called by the receiver inside the event's transaction).

    Every Mac checks in every 15 minutes, so a task per event would be ~110 tasks/s at 100,000 Macs. The
    tenant's drain lane (``portal.lanes``, a database row) queues one drain task when none is queued or running;
    an event stored while a drain runs marks the lane, and that drain goes round again before it lets go. The
    coordination is in the database, so it holds across web and worker processes without Redis.
    """
    lanes.request(DRAIN_LANE, tenant_id, "devices.tasks.drain_task", task_name="jamf-drain-%d" % tenant_id,
                  group="jamf-events")


def drain_task(tenant_id):
    """Task: drain the tenant's pending webhook events as the lane's only runner; returns the counts."""
    rounds = lanes.run(DRAIN_LANE, tenant_id, lambda since: drain_events(tenant_id), "devices.tasks.drain_task",
                       task_name="jamf-drain-%d" % tenant_id, group="jamf-events")
    if rounds is None:
        return "another drain of this tenant is running; it takes these events"
    total = Counter()
    for counts in rounds:
        total.update(counts)
    return dict(total)


def drain_events(tenant_id, older_than=None, limit=50000):
    """Task: process the tenant's pending webhook events in arrival order, in batches; returns counts.

    Check-ins (the bulk of the traffic) are applied a batch at a time; inventory events, which may
    need the Jamf Pro API, one by one as :func:`apply_event` does.
    """
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    counts = Counter()
    if tenant is None:
        return counts
    pending = InventoryEvent.objects.filter(
        tenant_id=tenant_id, source=InventoryEvent.Source.WEBHOOK, status=Status.PENDING
    )
    if older_than is not None:
        pending = pending.filter(received_at__lt=older_than)
    last_pk = 0
    while sum(counts.values()) < limit:
        events = list(pending.filter(pk__gt=last_pk).order_by("pk")[:DRAIN_BATCH])
        if not events:
            break
        last_pk = events[-1].pk
        for event in events:
            event.tenant = tenant
        counts.update(_apply_batch(tenant, events))
    return counts


def _apply_batch(tenant, events):
    check_ins, fetch, others = [], [], []
    for event in events:
        try:
            parsed = parse_webhook(event.raw_body.encode("utf-8"))
        except WebhookError:
            others.append(event)  # apply_event records the reason
            continue
        if parsed.action == "check_in" and parsed.jamf_id:
            check_ins.append((event, parsed))
        elif parsed.action == "inventory" and parsed.jamf_id and tenant.has_jamf_api:
            fetch.append((event, parsed))
        else:
            others.append(event)
    statuses = []
    if len(fetch) > 1:
        # Inventory events whose full record comes from the Jamf Pro API: fetched one by one, imported together
        # (one transaction and one evaluation for the batch instead of one each: a burst moves on in seconds).
        statuses.extend(_apply_inventory_batch(tenant, fetch))
    else:
        others.extend(event for event, _parsed in fetch)
    if check_ins:
        times = {event.pk: _event_time(event, parsed) for event, parsed in check_ins}
        results = record_check_ins(tenant, [(parsed.jamf_id, times[event.pk][0]) for event, parsed in check_ins])
        now = timezone.now()
        done = []
        for event, parsed in check_ins:
            if parsed.jamf_id not in results:
                others.append(event)  # a Mac the portal has not seen yet: the single path fetches it
                continue
            computer_id, _changed = results[parsed.jamf_id]
            note = clamp_note("webhook.eventTimestamp", parsed.timestamp, event.received_at) \
                if times[event.pk][1] else ""
            event.status, event.processed_at, event.computer_id, event.error = Status.PROCESSED, now, computer_id, note
            done.append(event)
        InventoryEvent.objects.bulk_update(done, ["status", "processed_at", "computer", "error"], batch_size=500)
        statuses.extend(Status.PROCESSED for _ in done)
    for event in sorted(others, key=lambda e: e.pk):
        statuses.append(apply_event(event))
    return Counter(statuses)


def _apply_inventory_batch(tenant, fetch, client=None):
    """Apply inventory events of Macs with full records in the Jamf Pro API: fetch each Mac once, import the
    records in one batch, and finish every event as :func:`apply_event` would. Returns their statuses."""
    client = client or client_for(tenant)
    records, failures = {}, {}
    for _event, parsed in fetch:
        if parsed.jamf_id in records or parsed.jamf_id in failures:
            continue
        try:
            records[parsed.jamf_id] = client.get_computer(parsed.jamf_id)
        except JamfError as exc:
            failures[parsed.jamf_id] = exc
    found = [record for record in records.values() if record is not None]
    result = import_records(tenant, found, keep_outcomes=True) if found else None
    outcomes = {str(jamf_id): (outcome, reason) for _, jamf_id, outcome, reason in (result.outcomes if result else [])}
    computer_ids = dict(tenant.computers.filter(jamf_id__in=list(records)).values_list("jamf_id", "id"))
    statuses = []
    for event, parsed in sorted(fetch, key=lambda pair: pair[0].pk):
        jamf_id = parsed.jamf_id
        if jamf_id in failures:
            error = "Jamf Pro API: %s The next pull brings the change." % failures[jamf_id]
            status = _finish(event, Status.FAILED, error)
        elif records.get(jamf_id) is None:
            status = _finish(event, Status.IGNORED, "Jamf Pro has no computer %s (deleted since?)." % jamf_id)
        else:
            outcome, reason = outcomes.get(jamf_id, ("rejected", "the record names another Jamf ID"))
            if outcome == "rejected":
                status = _finish(event, Status.FAILED, "The full record was rejected: %s" % reason)
            else:
                note = {"stale": "Stale: a newer inventory is stored.", "unchanged": "Unchanged."}.get(outcome, "")
                status = _finish(event, Status.PROCESSED, note, computer_ids.get(jamf_id))
        statuses.append(status)
    return statuses


def process_stale_pending():
    """Task (scheduled, the safety net): drain webhook events left pending a minute or more (a lost drain task)."""
    cutoff = timezone.now() - STALE_PENDING_AFTER
    tenant_ids = (
        InventoryEvent.objects.filter(
            source=InventoryEvent.Source.WEBHOOK, status=Status.PENDING, received_at__lt=cutoff
        ).values_list("tenant_id", flat=True).distinct()
    )
    counts = Counter()
    for tenant_id in list(tenant_ids):
        counts.update(drain_events(tenant_id, older_than=cutoff))
    return dict(counts)


def pull_tenant(tenant_id, full=False):
    """Task: pull one tenant's inventory from Jamf Pro; returns the run's counters."""
    tenant = Tenant.objects.get(pk=tenant_id)
    return pull_inventory(tenant, full=full).counters()


def pull_all(full=False):
    """Task (scheduled): queue a pull for every active tenant with Jamf Pro API credentials."""
    queued = 0
    for tenant in Tenant.objects.filter(is_active=True).exclude(jamf_url="").exclude(jamf_client_id=""):
        if not tenant.has_jamf_api:
            continue
        async_task("devices.tasks.pull_tenant", tenant.pk, full=full,
                   task_name="jamf-%s-pull-%s" % ("full" if full else "incremental", tenant.slug), group="jamf-pull")
        queued += 1
    return queued


def purge_old_events(days=None, chunk=5000):
    """Task (scheduled daily): delete inventory events older than INVENTORY_EVENT_RETENTION_DAYS.

    Webhooks arrive at ~110 a second for 100,000 Macs, so the table is kept to a window. Pending
    events are kept whatever their age. Deleted in chunks, so no transaction grows with the table.
    """
    days = settings.INVENTORY_EVENT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - datetime.timedelta(days=days)
    old = InventoryEvent.objects.filter(received_at__lt=cutoff).exclude(status=Status.PENDING)
    deleted = 0
    while True:
        ids = list(old.order_by("received_at").values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += InventoryEvent.objects.filter(pk__in=ids).delete()[0]
