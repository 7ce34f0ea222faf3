"""Helpers of the admin tests: tenants in a given state of health, their Macs, reports and daily snapshots."""

import datetime

from django.utils import timezone

from compliance.models import ComplianceDailySnapshot, ComplianceReport
from devices.models import ComplianceStatus
from tests.factories import ClientSecretFactory, ComputerFactory, TenantFactory


def macs(tenant, compliant=0, not_compliant=0, not_evaluated=0):
    """Macs of ``tenant`` with stored evaluation results."""
    made = []
    for status, n in ((ComplianceStatus.COMPLIANT, compliant), (ComplianceStatus.NOT_COMPLIANT, not_compliant),
                      (None, not_evaluated)):
        made += ComputerFactory.create_batch(n, tenant=tenant, compliance_status=status,
                                             failed_rules=["filevault_off"] if status == "notCompliant" else [])
    return made


def report(computer, status, age=datetime.timedelta(0), sent=None, username="user0"):
    """A ComplianceReport of ``computer`` made ``age`` ago (``created_at`` is set by the database, so backdated)."""
    row = ComplianceReport.objects.create(
        tenant_id=computer.tenant_id, computer=computer, username=username, status=status,
        latest=status != ComplianceReport.Status.SUPERSEDED, payload=[], sent_at=sent, user_account=None,
    )
    ComplianceReport.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row


def snapshots(tenant, values, today=None):
    """Daily snapshots ending today: ``values`` is [(total, compliant, not_compliant) or None], oldest first."""
    today = today or timezone.now().date()
    start = today - datetime.timedelta(days=len(values) - 1)
    for index, value in enumerate(values):
        if value is None:
            continue
        total, compliant, not_compliant = value
        ComplianceDailySnapshot.objects.create(
            tenant=tenant, date=start + datetime.timedelta(days=index), total=total, compliant=compliant,
            not_compliant=not_compliant, not_evaluated=total - compliant - not_compliant,
            taken_at=timezone.now(),
        )


def healthy_tenant(name, slug, n_macs=4, **fields):
    """A tenant whose connection test passed, with a secret valid for 180 days and compliant Macs."""
    tenant = TenantFactory(name=name, slug=slug, last_test_ok=True, last_test_at=timezone.now(),
                           last_test_message="ok", **fields)
    ClientSecretFactory(tenant=tenant, expires_at=timezone.now() + datetime.timedelta(days=180))
    if n_macs:
        macs(tenant, compliant=n_macs)
    return tenant
