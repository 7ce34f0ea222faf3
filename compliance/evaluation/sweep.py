"""The hourly sweep: re-evaluate the Macs that time alone moved across a line."""

import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from compliance.evaluation.core import ACTIVATED, NOT_STARTED, UNRESPONSIVE
from compliance.evaluation.store import EvaluationResult, evaluate_tenant
from devices.models import Computer, UserAccount, failing_rule_q


def sweep_candidates(tenant, now, max_inventory_age_days=None):
    """A queryset of the tenant's Macs whose stored result time may have made wrong.

    Crossing the unresponsive line, the validity period or a policy's inventory age, Company Portal
    passing the AccountNotOnboarded threshold, and Macs never evaluated.
    """
    checkin_cutoff = now - datetime.timedelta(hours=tenant.unresponsive_after_hours)
    validity_cutoff = now - datetime.timedelta(days=tenant.compliance_validity_days)
    portal_cutoff = now - datetime.timedelta(days=tenant.account_not_onboarded_days)
    condition = (
        Q(evaluated_at__isnull=True)
        | Q(inventory_state=ACTIVATED) & (Q(last_check_in__lt=checkin_cutoff) | Q(last_check_in__isnull=True))
        | Q(inventory_state=UNRESPONSIVE, last_check_in__gte=checkin_cutoff)
        | (Q(last_inventory_update__lt=validity_cutoff) | Q(last_inventory_update__isnull=True))
        & ~failing_rule_q("validity_expired")
    )
    if max_inventory_age_days:
        age_cutoff = now - datetime.timedelta(days=max_inventory_age_days)
        condition |= (
            (Q(last_inventory_update__lt=age_cutoff) | Q(last_inventory_update__isnull=True))
            & ~failing_rule_q("inventory_too_old")
        )
    waiting_users = UserAccount.objects.filter(computer_id=OuterRef("pk"), registration_state=NOT_STARTED)
    condition |= Q(company_portal_version__isnull=False, company_portal_seen_at__lt=portal_cutoff) & Exists(
        waiting_users
    )
    return Computer.objects.filter(tenant=tenant).filter(condition)


def sweep_tenant(tenant, now=None):
    """Re-evaluate the Macs of one tenant that time moved across a line; returns an EvaluationResult."""
    from compliance.models import CompliancePolicy

    now = now or timezone.now()
    ages = CompliancePolicy.objects.filter(
        tenant=tenant, enabled=True, max_inventory_age_days__isnull=False
    ).values_list("max_inventory_age_days", flat=True)
    ids = list(sweep_candidates(tenant, now, min(ages, default=None)).values_list("id", flat=True))
    if not ids:
        return EvaluationResult(queries=2)
    return evaluate_tenant(tenant.pk, computer_ids=ids, now=now)
