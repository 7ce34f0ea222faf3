"""django-q2 task functions for compliance. Tasks take IDs, call a plain function and return its counters."""

import datetime
import logging

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone
from django_q.tasks import async_task

from compliance import sync
from compliance.delivery import next_attempt_due, release_expired_leases
from compliance.evaluation import evaluate_tenant, sweep_tenant
from compliance.models import OutboxMessage
from portal import lanes
from portal.models import Tenant

logger = logging.getLogger(__name__)


def queue_evaluate_tenant(tenant_id):
    """Queue a re-evaluation of one tenant (after a policy or tenant-rule change)."""
    return async_task(
        "compliance.tasks.evaluate_tenant_task", tenant_id, task_name="evaluate tenant %s" % tenant_id,
        group="compliance-evaluate",
    )


def evaluate_tenant_task(tenant_id):
    """Re-evaluate every Mac of a tenant; safe to run twice (it writes only what changed)."""
    result = evaluate_tenant(tenant_id)
    logger.info("evaluated tenant %s: %s", tenant_id, result.counters)
    return result.counters


def sweep_task():
    """Hourly: re-evaluate the Macs that time moved across the unresponsive, validity or onboarding line."""
    totals = {}
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        counters = sweep_tenant(tenant).counters
        for key, value in counters.items():
            totals[key] = totals.get(key, 0) + value
        if counters["computers_changed"]:
            logger.info("sweep of %s: %s", tenant.slug, counters)
    return totals


def snapshot_task():
    """Hourly: store today's fleet counts per tenant (the day's last run wins) for the 90-day series."""
    from compliance.reports import take_snapshots

    return {"tenants": take_snapshots()}


def check_secret_expiry(now=None):
    """Daily: warn each tenant's admins (log and e-mail) 30, 14, 7 and 1 days before its last valid secret expires.

    The days come from SECRET_EXPIRY_WARNING_DAYS. Expired secrets are never tried by the client; the
    admin shows the same warning as a banner (``compliance.connection.secret_warning``).
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail
    from django.db.models import Max, Q
    from django.utils import timezone

    from portal import tenancy
    from portal.models import Membership

    now = now or timezone.now()
    thresholds = set(settings.SECRET_EXPIRY_WARNING_DAYS)
    counters = {"tenants": 0, "warnings": 0, "emails": 0}
    tenants = (
        Tenant.objects.filter(is_active=True)
        .with_own_app()
        .annotate(last_valid=Max("client_secrets__expires_at", filter=Q(client_secrets__expires_at__gt=now)))
        .order_by("pk")
    )
    for tenant in tenants:
        counters["tenants"] += 1
        if tenant.last_valid is None:
            continue
        days = (tenant.last_valid.date() - now.date()).days
        if days not in thresholds:
            continue
        counters["warnings"] += 1
        subject = "[%s] The Entra client secret expires in %d day%s" % (tenant.name, days, "" if days == 1 else "s")
        body = (
            "The last valid client secret of the tenant %(name)s expires on %(date)s (in %(days)d day(s)).\n\n"
            "After that the portal can no longer report this tenant's Macs to Intune. Add a new client secret to "
            "the app registration %(app)s in Entra ID (Certificates & secrets), then enter its Value and expiry "
            "date on the tenant's page in the portal (%(url)s/admin/portal/tenant/%(pk)d/change/).\n"
        ) % {
            "name": tenant.name, "date": tenant.last_valid.date().isoformat(), "days": days,
            "app": tenant.client_id, "url": settings.PORTAL_BASE_URL, "pk": tenant.pk,
        }
        logger.warning("tenant %s: the last valid client secret expires in %d day(s) (%s)", tenant.slug, days,
                       tenant.last_valid.date().isoformat())
        recipients = sorted(set(
            Membership.objects.filter(tenant=tenant, role=tenancy.ADMIN, user__is_active=True)
            .exclude(user__email="").values_list("user__email", flat=True)
        ))
        if not recipients:  # nobody at the customer: tell MSP staff
            recipients = sorted(set(
                get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
                .values_list("email", flat=True)
            ))
        if recipients:
            counters["emails"] += send_mail(subject, body, None, recipients, fail_silently=False) and len(recipients)
    counters.update(check_partner_credential_expiry(now, thresholds))
    return counters


def check_partner_credential_expiry(now, thresholds):
    """Warn MSP admins (superusers and holders of the MSP admin right) before the partner app's last credential
    expires, on the same days as the tenant secrets; every tenant in partner mode depends on it."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail
    from django.db.models import Q

    from portal.partner import partner_application

    partner = partner_application()
    last = partner.last_expiry(now) if partner else None
    if last is None:
        return {"partner_warnings": 0, "partner_emails": 0}
    days = (last.date() - now.date()).days
    if days not in thresholds:
        return {"partner_warnings": 0, "partner_emails": 0}
    logger.warning("the partner application's last valid credential expires in %d day(s) (%s)", days,
                   last.date().isoformat())
    subject = "[Mac compliance portal] The partner application's credential expires in %d day%s" % (
        days, "" if days == 1 else "s")
    body = (
        "The last valid certificate or client secret of the partner application %(name)s (%(app)s) expires on "
        "%(date)s (in %(days)d day(s)).\n\nAfter that the portal can no longer reach any customer tenant in "
        "partner mode. Generate a new certificate on the Partner application page (%(url)s/admin/portal/"
        "partnerapplication/), upload its .cer to the app registration in Entra ID (Certificates & secrets), "
        "and keep the old one until then: both work side by side.\n"
    ) % {"name": partner.display_name, "app": partner.client_id, "date": last.date().isoformat(), "days": days,
         "url": settings.PORTAL_BASE_URL}
    users = get_user_model().objects.filter(is_active=True).exclude(email="").filter(
        Q(is_superuser=True)
        | Q(user_permissions__codename="manage_partner_application")
        | Q(groups__permissions__codename="manage_partner_application")
    )
    recipients = sorted(set(users.values_list("email", flat=True)))
    sent = send_mail(subject, body, None, recipients, fail_silently=False) and len(recipients) if recipients else 0
    return {"partner_warnings": 1, "partner_emails": sent}


# -- Reports to Intune (compliance/outbox.py, compliance/delivery.py, compliance/sync.py) ------------
# Per-tenant tasks: one tenant's outage (its calls timing out, its rows in backoff) never holds another's.


DELIVER_LANE, STATUS_LANE = "deliver", "status"


def request_delivery(tenant_id, at=None):
    """Ask for a delivery run of the tenant at ``at`` (default: after the debounce, so a burst goes out together).

    One run per tenant at a time, coordinated in the database (``portal.lanes``): a request during a run makes
    that run go again after the debounce. Called after the change is committed (``transaction.on_commit``).
    """
    if not Tenant.objects.filter(pk=tenant_id, is_active=True, intune_enabled=True).exists():
        return False
    if at is None:
        at = timezone.now() + datetime.timedelta(seconds=settings.INTUNE_DELIVERY_DEBOUNCE)
    return lanes.request(DELIVER_LANE, tenant_id, "compliance.tasks.deliver_task", at=at,
                         task_name="deliver %s" % tenant_id, group="compliance-intune")


def queue_deliver(tenant_id):
    """Deliver the tenant's reports now (an operator's action, or after an evaluation that made reports)."""
    return request_delivery(tenant_id, at=timezone.now())


def request_status_poll(tenant_id, at=None):
    """Ask for a read-back of Intune's verdict on the tenant's accepted messages at ``at`` (default: now)."""
    return lanes.request(STATUS_LANE, tenant_id, "compliance.tasks.poll_status_task", at=at,
                         task_name="status %s" % tenant_id, group="compliance-intune")


def queue_evaluate_computers(tenant_id, computer_ids):
    """Queue an evaluation of some Macs of a tenant and their reports (after an upload or a retire)."""
    return async_task("compliance.tasks.evaluate_computers_task", tenant_id, list(computer_ids),
                      task_name="evaluate %d Macs of %s" % (len(computer_ids), tenant_id), group="compliance-intune")


def evaluate_all_task():
    """Every 5 minutes: a per-tenant evaluate-and-queue task for every active tenant."""
    ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in ids:
        async_task("compliance.tasks.evaluate_and_report_task", tenant_id, task_name="evaluate %s" % tenant_id,
                   group="compliance-intune")
    return {"tenants": len(ids)}


def evaluate_and_report_task(tenant_id):
    """Evaluate a tenant, queue the reports it calls for (SyncRun "evaluate"), and deliver them right away."""
    counters = sync.evaluate_and_queue(tenant_id)
    if counters.get("created"):
        queue_deliver(tenant_id)
    return counters


def evaluate_computers_task(tenant_id, computer_ids):
    """Evaluate some Macs of a tenant and queue their reports; deliver right away when it made any."""
    counters = sync.evaluate_and_queue(tenant_id, computer_ids=computer_ids)
    if counters.get("created"):
        queue_deliver(tenant_id)
    return counters


def deliver_all_task():
    """Every minute (the safety net): ask for a delivery of every tenant with Intune enabled."""
    release_expired_leases()
    ids = list(sync.enabled_tenants().values_list("pk", flat=True))
    for tenant_id in ids:
        request_delivery(tenant_id, at=timezone.now())
    return {"tenants": len(ids)}


def deliver_task(tenant_id):
    """Queue reports for Macs changed since the last run and send the due ones (SyncRun "deliver").

    The tenant's only delivery run (``portal.lanes``); when it is done it asks for what comes next: at once if
    its time budget ran out, at the earliest parked report's next attempt (a message that used up its
    in-request retries is retried when it falls due, not at the next schedule tick), and a status read-back
    when Intune's verdict can first be expected.
    """
    rounds = lanes.run(DELIVER_LANE, tenant_id, lambda since: sync.deliver(tenant_id, since=since),
                       "compliance.tasks.deliver_task", again_after=settings.INTUNE_DELIVERY_DEBOUNCE,
                       task_name="deliver %s" % tenant_id, group="compliance-intune")
    if rounds is None:
        return {"skipped": "another delivery of this tenant is running; it takes this request"}
    follow_up_delivery(tenant_id, more=any(counters.get("more") for counters in rounds))
    return rounds[-1] if len(rounds) == 1 else {"rounds": rounds}


def follow_up_delivery(tenant_id, more=False, now=None):
    """After a delivery run: the next delivery (now, or when the earliest parked report falls due) and the next
    status read-back. Returns (when the next delivery was asked for, when the next poll) for tests."""
    now = now or timezone.now()
    next_delivery = now if more else next_attempt_due(tenant_id)
    if next_delivery is not None:
        # At least a second on: a row that is due but could not be sent must not make a tight loop.
        request_delivery(tenant_id, at=max(next_delivery, now + datetime.timedelta(seconds=1)))
    next_poll = next_status_poll(tenant_id, now)
    if next_poll is not None:
        request_status_poll(tenant_id, at=next_poll)
    return next_delivery, next_poll


def next_status_poll(tenant_id, now=None):
    """When to read back the tenant's accepted messages: INTUNE_STATUS_FIRST_POLL after the newest was accepted
    the first time, then twice the oldest one's age (a backoff), at most INTUNE_STATUS_POLL_MAX_WAIT ahead."""
    now = now or timezone.now()
    accepted = OutboxMessage.objects.filter(tenant_id=tenant_id, status=OutboxMessage.Status.ACCEPTED)
    span = accepted.aggregate(oldest=Min("sent_at"), newest=Max("sent_at"))
    if span["oldest"] is None:
        return None
    first = datetime.timedelta(seconds=settings.INTUNE_STATUS_FIRST_POLL)
    longest = datetime.timedelta(seconds=settings.INTUNE_STATUS_POLL_MAX_WAIT)
    age = max(now - span["oldest"], datetime.timedelta(0))
    if age < first:
        return span["oldest"] + first
    return now + min(max(age, first), longest)


def poll_status_all_task():
    """Every minute (the safety net): read back Intune's verdict on accepted messages, per tenant that has any."""
    ids = sorted(set(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.ACCEPTED, tenant__intune_enabled=True)
        .order_by().values_list("tenant_id", flat=True).distinct()
    ))
    for tenant_id in ids:
        request_status_poll(tenant_id)
    return {"tenants": len(ids)}


def poll_status_task(tenant_id):
    """Read back Intune's verdict (the tenant's only status run), then ask for the next read-back while any
    message is still processing."""
    rounds = lanes.run(STATUS_LANE, tenant_id, lambda since: sync.poll(tenant_id),
                       "compliance.tasks.poll_status_task", task_name="status %s" % tenant_id,
                       group="compliance-intune")
    if rounds is None:
        return {"skipped": "another status read-back of this tenant is running"}
    next_poll = next_status_poll(tenant_id)
    if next_poll is not None:
        request_status_poll(tenant_id, at=next_poll)
    if any(counters.get("resend") for counters in rounds):
        queue_deliver(tenant_id)  # messages Intune never received go out again under their IDs
    return rounds[-1] if len(rounds) == 1 else {"rounds": rounds}


def provision_task(tenant_id):
    """Provision (and ensure the partner policy) or deprovision a tenant, as its intune_enabled says."""
    return sync.provision(tenant_id)


def prune_history_task():
    """Daily: forget old finished reports that are no pair's latest, and old SyncRuns."""
    return sync.prune_history()


def queue_sync_now(tenant_id):
    """Queue :func:`sync_now_task` (the tenant page's Sync now)."""
    return async_task("compliance.tasks.sync_now_task", tenant_id, task_name="sync now %s" % tenant_id,
                      group="compliance-intune")


def sync_now_task(tenant_id):
    """Pull from Jamf Pro (when configured), evaluate every Mac, then deliver what is due to Intune."""
    counters = sync.sync_now(tenant_id)
    if Tenant.objects.filter(pk=tenant_id, is_active=True, intune_enabled=True).exists():
        queue_deliver(tenant_id)  # also what was waiting, not only what the evaluation made
    return counters


def provision_task_queue(tenant_id):
    """Queue :func:`provision_task` (Tenant.intune_enabled changed)."""
    return async_task("compliance.tasks.provision_task", tenant_id, task_name="provision %s" % tenant_id,
                      group="compliance-intune")
