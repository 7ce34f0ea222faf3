"""Pull inventory from a tenant's Jamf Pro API: incremental (every 15 minutes) or full (daily).

An incremental pull asks for the computers whose ``general.reportDate`` is at or after the start of
the last successful pull, less an overlap for clock skew and reports in flight; without a previous
pull it fetches everything. A full pull fetches everything and then reconciles: a computer the
portal holds as managed that a *complete* fetch did not return is marked ``managed=False`` (so it
is reported as deactivated). A fetch that failed, stopped early, returned nothing, or saw the
fleet's total change while paging marks nothing (Zentral guards exactly this).

Each pull is recorded as a ``jamf_pull`` SyncRun (status succeeded, partial or failed, with the
counters) and as an InventoryEvent with source ``api_pull`` whose body is the same summary (mode,
filter, pages, counters, completeness), so it shows in the admin beside the webhooks.
"""

import datetime
import json
import logging
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.importer import import_records
from devices.jamf.client import JamfClient, JamfError, report_date_filter
from devices.models import Computer, InventoryEvent
from devices.signals import announce_computers_changed
from portal.models import SyncRun
from portal.runs import record_run

logger = logging.getLogger(__name__)

OVERLAP = datetime.timedelta(minutes=10)
FULL_EVENT = "JamfFullPull"
INCREMENTAL_EVENT = "JamfIncrementalPull"
CHUNK = 500


@dataclass
class PullResult:
    mode: str
    filter: str = ""
    api_version: str = ""
    pages: int = 0
    fetched: int = 0
    total_count: int | None = None
    complete: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: int = 0
    unmanaged: int = 0
    seconds: float = 0.0
    error: str = ""
    note: str = ""
    rejections: list = field(default_factory=list)  # the first few, for the admin
    clamped: list = field(default_factory=list)  # the first few dates stored as the time of receipt
    changed_ids: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.error

    def counters(self):
        data = asdict(self)
        data.pop("changed_ids")
        return data


def last_successful_pull(tenant):
    """When the last successful pull of either kind started, or None."""
    return (
        InventoryEvent.objects.filter(
            tenant=tenant, source=InventoryEvent.Source.API_PULL, status=InventoryEvent.Status.PROCESSED
        )
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )


def pull_inventory(tenant, full=False, client=None, since=None, batch_size=None):
    """Pull a tenant's inventory from Jamf Pro; returns a :class:`PullResult`.

    The run is recorded twice over: as a ``jamf_pull`` SyncRun (the admin's list of background
    runs) and as an ``api_pull`` InventoryEvent whose body is the summary; the start of the last
    successful one is the next incremental pull's watermark.
    """
    result = PullResult(mode="full" if full else "incremental")
    with record_run(tenant.pk, SyncRun.Kind.JAMF_PULL) as sync_run:
        _pull(tenant, result, full, client, since, batch_size)
        sync_run.counters = result.counters()
        sync_run.error = result.error
        if result.error:
            sync_run.status = SyncRun.Status.FAILED
        elif result.rejected or (full and not result.complete):
            sync_run.status = SyncRun.Status.PARTIAL
    level = logging.WARNING if result.error else logging.INFO
    logger.log(level, "Jamf Pro %s pull of %s: %s", result.mode, tenant.slug, result.counters())
    return result


def _pull(tenant, result, full, client, since, batch_size):
    run = InventoryEvent.objects.create(
        tenant=tenant, source=InventoryEvent.Source.API_PULL, event_type=FULL_EVENT if full else INCREMENTAL_EVENT,
        status=InventoryEvent.Status.PENDING, raw_body=json.dumps({"mode": result.mode}),
    )
    started = time.monotonic()
    own_client = client is None
    try:
        if client is None:
            client = JamfClient.from_tenant(tenant)
        if not full:
            if since is None:
                previous = last_successful_pull(tenant)
                since = previous - OVERLAP if previous else None
            if since is not None:
                result.filter = report_date_filter(since)
            else:
                result.note = "No earlier pull: fetched every computer (no reconcile on an incremental pull)."
        result.api_version = client.inventory_version()
        _fetch_and_import(tenant, client, result, batch_size or settings.IMPORT_BATCH_SIZE, full)
    except JamfError as exc:
        result.error = str(exc)
    except Exception as exc:
        result.error = "%s: %s" % (type(exc).__name__, exc)  # recorded, then raised for the task's log
        raise
    finally:
        if own_client and client is not None:
            client.close()
        result.seconds = round(time.monotonic() - started, 3)
        run.status = InventoryEvent.Status.FAILED if result.error else InventoryEvent.Status.PROCESSED
        run.error = result.error
        run.processed_at = timezone.now()
        run.raw_body = json.dumps(result.counters(), indent=1)
        run.save(update_fields=["status", "error", "processed_at", "raw_body"])


def _fetch_and_import(tenant, client, result, batch_size, full):
    seen = set()
    totals = set()
    failure = []

    def records():
        try:
            for page in client.iter_pages(rsql=result.filter or None):
                result.pages += 1
                totals.add(page["totalCount"])
                if result.total_count is None:
                    result.total_count = page["totalCount"]
                for record in page["results"]:
                    result.fetched += 1
                    if isinstance(record, dict) and record.get("id") is not None:
                        seen.add(str(record["id"]).strip())
                    yield record
        except JamfError as exc:
            failure.append(exc)  # keep what was imported so far and its counters; raised below

    imported = import_records(tenant, records(), batch_size=batch_size)
    result.created, result.updated = imported.created, imported.updated
    result.unchanged, result.stale = imported.unchanged, imported.stale
    result.rejected = len(imported.rejected)
    result.rejections = [r.as_dict() for r in imported.rejected[:20]]
    result.changed_ids = list(imported.changed_ids)
    result.clamped = imported.notes[:20]
    if failure:
        raise failure[0]
    if imported.input_error:
        raise JamfError("Jamf Pro's answer could not be read: %s" % imported.input_error)
    if len(totals) > 1:
        result.note = "The fleet changed while paging (totalCount %s): not reconciled." % sorted(totals)
        return
    result.complete = len(seen) >= (result.total_count or 0)
    if not result.complete:
        result.note = "Jamf Pro returned %d of %d computers: not reconciled." % (len(seen), result.total_count)
        return
    if full:
        _reconcile(tenant, seen, result)


def _reconcile(tenant, seen, result):
    """Mark the tenant's managed computers that a complete full fetch did not return as no longer managed."""
    if not seen:
        result.note = "Jamf Pro returned no computers: nothing marked (an empty answer never wipes a fleet)."
        return
    gone = [
        pk for pk, jamf_id in Computer.objects.filter(tenant=tenant, managed=True).values_list("id", "jamf_id")
        if jamf_id not in seen
    ]
    now = timezone.now()
    for start in range(0, len(gone), CHUNK):
        chunk = gone[start:start + CHUNK]
        with transaction.atomic():  # marked and announced together: now deactivated, evaluated as such
            # The source hash is cleared so the full record is written again if the Mac comes back.
            Computer.objects.filter(pk__in=chunk, managed=True).update(managed=False, source_hash="", updated_at=now)
            announce_computers_changed(tenant.pk, chunk, "reconcile")
    result.unmanaged = len(gone)
    result.changed_ids.extend(gone)
