"""The runs behind the Intune tasks, each recorded as a SyncRun, and the operator's actions.

``compliance/tasks.py`` holds the thin django-q2 task functions (IDs in, counters out); the work is
here so a test, the ``sync_intune`` command and the admin call the same code.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from compliance.delivery import apply_provisioning, deliver_tenant, due, poll_status, release_expired_leases
from compliance.intune.errors import IntuneError
from compliance.models import ComplianceReport
from compliance.outbox import queue_reports
from devices.models import Computer
from portal import audit
from portal.models import SyncRun, Tenant
from portal.runs import record_run

logger = logging.getLogger(__name__)

Status = ComplianceReport.Status
Reason = ComplianceReport.Reason
INCREMENTAL_OVERLAP = datetime.timedelta(minutes=2)  # re-read a little before the last run: the outbox is idempotent


def enabled_tenants():
    return Tenant.objects.filter(is_active=True, intune_enabled=True).order_by("pk")


# -- evaluate ----------------------------------------------------------------------------------


def evaluate_and_queue(tenant_id, computer_ids=None):
    """Evaluate a tenant (or some of its Macs) and queue the reports that calls for. Returns counters."""
    from compliance.evaluation import evaluate_tenant

    with record_run(tenant_id, SyncRun.Kind.EVALUATE) as run:
        evaluation = evaluate_tenant(tenant_id, computer_ids=computer_ids)
        outbox = queue_reports(tenant_id, computer_ids=computer_ids)
        run.counters = {**evaluation.counters, **{"reports_%s" % k: v for k, v in outbox.counters.items()}}
    return {**run.counters, "created": outbox.created}


# -- deliver -----------------------------------------------------------------------------------


def last_outbox_run(tenant_id):
    """When the last evaluate or deliver run of a tenant started (the incremental outbox reads from there)."""
    return (
        SyncRun.objects.filter(tenant_id=tenant_id, kind__in=[SyncRun.Kind.EVALUATE, SyncRun.Kind.DELIVER])
        .exclude(status=SyncRun.Status.FAILED).aggregate(last=Max("started_at"))["last"]
    )


def learn_tenant_id(tenant):
    """The payloads need the tenant's GUID: ask Entra for a token once, which tells it."""
    if tenant.entra_tenant_id:
        return
    from compliance.intune.client import IntuneClient

    IntuneClient.from_tenant(tenant).tenant_id  # noqa: B018 - the property fetches and stores it


def deliver(tenant_id, budget=None, concurrency=None, progress=None, incremental=True, since=None):
    """Queue reports for Macs changed since the last run, then send the tenant's due reports. Returns counters.

    ``since``: when the previous delivery run of the tenant started (the delivery task knows it from its lane);
    without it, from the last evaluate or deliver run. Also returns ``more``: True when due rows are left after
    the time budget (the task queues itself again).
    """
    keep = progress is not None
    with record_run(tenant_id, SyncRun.Kind.DELIVER, keep_if_idle=keep) as run:
        tenant = Tenant.objects.get(pk=tenant_id)
        counters = {}
        if not (tenant.is_active and tenant.intune_enabled):
            run.counters = {"skipped": "Intune integration disabled"}
            return run.counters
        if incremental:
            try:
                learn_tenant_id(tenant)
            except IntuneError as exc:
                run.error = "%s %s" % (exc.problem.message, exc.problem.advice)
            since = since or last_outbox_run(tenant_id)
            if since is not None:
                outbox = queue_reports(tenant_id, since=since - INCREMENTAL_OVERLAP)
                counters.update({"reports_%s" % k: v for k, v in outbox.counters.items() if k != "pairs"})
        result = deliver_tenant(tenant_id, budget=budget, concurrency=concurrency, progress=progress)
        counters.update(result.as_dict())
        if result.errors:
            run.error = "\n".join(sorted(set(result.errors)))[:5000]
            if not result.counters.get("accepted"):
                run.status = SyncRun.Status.FAILED
        counters["more"] = bool(not result.stopped and due(tenant_id).exists())
        run.counters = counters
    return counters


def poll(tenant_id):
    """Read back Intune's verdict on the tenant's accepted messages. Returns counters."""
    with record_run(tenant_id, SyncRun.Kind.STATUS, keep_if_idle=False) as run:
        counters = poll_status(tenant_id)
        run.counters = dict(counters)
        run.error = counters.error
    return run.counters


def provision(tenant_id):
    """Provision or deprovision a tenant to match its ``intune_enabled``. Returns counters."""
    with record_run(tenant_id, SyncRun.Kind.PROVISION) as run:
        run.counters = apply_provisioning(tenant_id)
    return run.counters


# -- operators ---------------------------------------------------------------------------------


def sync_now(tenant_id):
    """An operator's Sync now: a Jamf Pro pull (with API credentials), then evaluate and queue. Returns counters.

    Each step is recorded as its own SyncRun; a failed pull still lets the stored Macs be evaluated.
    """
    from devices.pull import pull_inventory

    tenant = Tenant.objects.get(pk=tenant_id)
    counters = {}
    if tenant.has_jamf_api:
        counters["jamf_pull"] = pull_inventory(tenant).counters()
    counters["evaluate"] = evaluate_and_queue(tenant_id)
    return counters



def resend(tenant_id, computer_ids, requested_by=""):
    """Make fresh reports of the Macs' registered users from their current state (an operator's re-send)."""
    result = queue_reports(tenant_id, computer_ids=computer_ids, force=True, reason=Reason.RESEND,
                           requested_by=requested_by)
    audit.record_many("resend", Computer.objects.filter(tenant_id=tenant_id, id__in=computer_ids).only(
        "id", "tenant_id", "name", "serial_number", "udid"),
                      details={"reports_queued": getattr(result, "created", 0), "skipped": result.skipped or ""})
    return result


def retire(tenant_id, computer_ids, requested_by=""):
    """Retire Macs: no longer managed, so they are reported to Intune as deactivated (state 1) right away."""
    from compliance.evaluation import evaluate_tenant

    now = timezone.now()
    computers = Computer.objects.filter(tenant_id=tenant_id, id__in=computer_ids)
    with transaction.atomic():
        computers.filter(retired_at__isnull=True).update(retired_at=now, updated_at=now)
        computers.update(managed=False, updated_at=now)
        # Bulk updates send no model signal: the audit trail gets its entries here.
        audit.record_many("retire", computers.only("id", "tenant_id", "name", "serial_number", "udid"))
    evaluate_tenant(tenant_id, computer_ids=computer_ids)
    return queue_reports(tenant_id, computer_ids=computer_ids, force=True, reason=Reason.RETIRE,
                         requested_by=requested_by)


def delete_from_entra_and_intune(computer, requested_by="", client=None):
    """Delete a Mac from Entra ID and Intune (Graph) and record it in its history. Returns the history rows.

    Each Entra device ID the Mac is known by (its own and its users') is deleted. The pairs are not
    reported again until the Mac registers anew (a new Entra device ID).
    """
    from compliance.intune.client import IntuneClient
    from devices.models import UserAccount

    users = list(UserAccount.objects.filter(computer=computer).exclude(entra_user_id=""))
    device_ids = {u.entra_device_id or computer.entra_device_id for u in users} | {computer.entra_device_id}
    device_ids.discard("")
    rows = []
    client = client or IntuneClient.from_tenant(computer.tenant)
    outcome = {}
    for device_id in sorted(device_ids):
        try:
            outcome[device_id] = client.delete_device(device_id)
        except (IntuneError, ValueError) as exc:
            outcome[device_id] = {"error": str(exc)}
    now = timezone.now()
    with transaction.atomic():
        for device_id, answer in sorted(outcome.items()):
            pair_users = [u for u in users if (u.entra_device_id or computer.entra_device_id) == device_id] or [None]
            failed = "error" in answer
            for user in pair_users:
                if user is not None and not failed:
                    ComplianceReport.objects.filter(user_account=user, latest=True).update(latest=False)
                    ComplianceReport.objects.filter(user_account=user, status=Status.PENDING).update(
                        status=Status.SUPERSEDED, finished_at=now, updated_at=now
                    )
                rows.append(ComplianceReport.objects.create(
                    tenant_id=computer.tenant_id, computer=computer, user_account=user,
                    kind=ComplianceReport.Kind.DELETE, reason=Reason.DELETE,
                    username=user.username if user else "", entra_device_id=device_id,
                    entra_user_id=user.entra_user_id if user else "", payload=answer,
                    status=Status.FAILED if failed else Status.COMPLETED,
                    latest=bool(user is not None and not failed), error_detail=answer.get("error", ""),
                    sent_at=now, finished_at=now, requested_by=requested_by,
                ))
        audit.record("delete_from_entra_intune", computer, details={
            device_id: ("failed: %s" % answer["error"]) if "error" in answer else "deleted"
            for device_id, answer in sorted(outcome.items())
        })
    return rows


# -- health and housekeeping -------------------------------------------------------------------


def tenant_health(tenant_ids, now=None):
    """Per tenant: last successful delivery, pending and failed counts, oldest pending age (two queries)."""
    now = now or timezone.now()
    stats = {
        row["tenant_id"]: row
        for row in ComplianceReport.objects.filter(tenant_id__in=tenant_ids, kind=ComplianceReport.Kind.REPORT)
        .filter(status__in=[Status.PENDING, Status.FAILED, Status.ACCEPTED, Status.COMPLETED])
        .values("tenant_id").order_by()
        .annotate(
            pending=Count("id", filter=Q(status=Status.PENDING)),
            failed=Count("id", filter=Q(status=Status.FAILED, latest=True)),
            oldest_pending=Min("created_at", filter=Q(status=Status.PENDING)),
            last_delivery=Max("sent_at"),
        )
    }
    health = {}
    for tenant_id in tenant_ids:
        row = stats.get(tenant_id, {})
        oldest = row.get("oldest_pending")
        health[tenant_id] = {
            "last_delivery": row.get("last_delivery"),
            "pending": row.get("pending", 0),
            "failed": row.get("failed", 0),
            "oldest_pending": oldest,
            "oldest_pending_age": (now - oldest) if oldest else None,
        }
    return health


def prune_history(now=None):
    """Forget old history: reports that are not a pair's latest and finished long ago, and old SyncRuns."""
    now = now or timezone.now()
    reports = ComplianceReport.objects.filter(
        latest=False, status__in=[Status.COMPLETED, Status.SUPERSEDED, Status.FAILED, Status.ACCEPTED],
        created_at__lt=now - datetime.timedelta(days=settings.INTUNE_HISTORY_DAYS),
    )
    deleted_reports = 0
    while True:  # in slices, so the delete never holds a long lock
        ids = list(reports.values_list("id", flat=True)[:5000])
        if not ids:
            break
        deleted_reports += ComplianceReport.objects.filter(id__in=ids).delete()[0]
    runs = SyncRun.objects.filter(started_at__lt=now - datetime.timedelta(days=settings.SYNC_RUN_HISTORY_DAYS))
    return {"reports": deleted_reports, "sync_runs": runs.delete()[0], "released": release_expired_leases()}
