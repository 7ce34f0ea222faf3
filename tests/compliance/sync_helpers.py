"""Helpers of the outbox, delivery, reliability and sync_intune tests: a tenant wired to the simulator and Macs."""

import datetime
import time
import uuid

from django.utils import timezone

from compliance.delivery import deliver_tenant, poll_status
from compliance.evaluation import evaluate_tenant
from compliance.models import ComplianceReport
from portal.models import Tenant
from tests.compliance.intune_helpers import connect, microsoft
from tests.factories import ComputerFactory, UserAccountFactory

Status = ComplianceReport.Status


def enable(simulator, tenant, **options):
    """Connect ``tenant`` to the simulated Entra ID / Intune and switch its integration on (without the signal)."""
    sim_tenant = connect(simulator, tenant, **options)
    Tenant.objects.filter(pk=tenant.pk).update(intune_enabled=True, entra_tenant_id=sim_tenant.id)
    tenant.refresh_from_db()
    return sim_tenant


def registered_macs(tenant, n, users=1, now=None, **kwargs):
    """``n`` Macs, each with ``users`` Entra-registered accounts, evaluated (their results stored)."""
    now = now or timezone.now()
    computers = ComputerFactory.create_batch(
        n, tenant=tenant, last_check_in=now - datetime.timedelta(hours=1),
        last_inventory_update=now - datetime.timedelta(hours=1), company_portal_version="5.2404.0", **kwargs,
    )
    for computer in computers:
        device_id = kwargs.get("entra_device_id") or str(uuid.uuid4())
        if not kwargs.get("entra_device_id"):
            type(computer).objects.filter(pk=computer.pk).update(entra_device_id=device_id)
        for index in range(users):
            UserAccountFactory(computer=computer, username="user%d" % index, entra_device_id=device_id,
                               entra_user_id=str(uuid.uuid4()), email="u%d@%s.example" % (index, tenant.slug))
    evaluate_tenant(tenant.pk, now=now)
    return computers


def drain(tenant, rounds=200, poll=True):
    """Deliver and poll until no report of the tenant is pending, sending or accepted (or ``rounds`` runs out)."""
    for _ in range(rounds):
        deliver_tenant(tenant.pk)
        if poll:
            poll_status(tenant.pk)
        open_rows = ComplianceReport.objects.filter(
            tenant=tenant, status__in=[Status.PENDING] + ([Status.ACCEPTED] if poll else [])
        )
        if not open_rows.exists():
            return
        time.sleep(0.02)  # the millisecond backoffs come due
    raise AssertionError("reports still open after %d rounds: %s" % (rounds, list(
        open_rows.values_list("status", "attempts", "error_code")[:5])))


def statuses(tenant):
    """{status: count} of the tenant's reports."""
    from django.db.models import Count

    return {
        row["status"]: row["n"]
        for row in ComplianceReport.objects.filter(tenant=tenant).order_by().values("status").annotate(n=Count("id"))
    }


def applied_once(simulator, tenant):
    """(message IDs of the delivered reports, message IDs the simulator applied for the tenant)."""
    service = microsoft(simulator)
    delivered = ComplianceReport.objects.filter(tenant=tenant, status__in=[Status.ACCEPTED, Status.COMPLETED])
    ids = {str(m) for m in delivered.values_list("message_id", flat=True)}
    sim_tenant = service.tenant(tenant.entra_tenant)
    applied = {mid for mid, rec in service.messages.items() if rec["tenant"] == sim_tenant.id}
    return ids, applied
