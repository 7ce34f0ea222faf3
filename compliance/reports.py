"""Fleet counts per tenant, from the stored evaluation results (never re-evaluating), and the daily snapshots.

Used by ``/api/v1/reports/compliance/`` and by the scheduled :func:`take_snapshots`. Every function
takes a list of tenant IDs and runs one query, whatever the number of Macs or tenants.
"""

import datetime

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from compliance.models import ComplianceDailySnapshot
from devices.models import ComplianceStatus, Computer, InventoryState, Registration, failing_rule_q
from devices.rules import CODES

SERIES_DAYS = 90

COUNTS = {
    "total": Q(),
    "activated": Q(inventory_state=InventoryState.ACTIVATED),
    "deactivated": Q(inventory_state=InventoryState.DEACTIVATED),
    "unresponsive": Q(inventory_state=InventoryState.UNRESPONSIVE),
    "state_not_evaluated": Q(inventory_state__isnull=True),
    "compliant": Q(compliance_status=ComplianceStatus.COMPLIANT),
    "not_compliant": Q(compliance_status=ComplianceStatus.NOT_COMPLIANT),
    "compliance_not_evaluated": Q(compliance_status__isnull=True),
    "registered": Q(registration_state=Registration.REGISTERED),
    "not_started": Q(registration_state=Registration.NOT_STARTED),
    "account_not_onboarded": Q(registration_state=Registration.ACCOUNT_NOT_ONBOARDED),
    "registration_not_evaluated": Q(registration_state__isnull=True),
    "company_portal": Q(company_portal_version__isnull=False),
}


def _rule_q(code):
    # PostgreSQL: jsonb's "?" finds a string in the array and is the cheapest per row; elsewhere the
    # quoted code in the JSON text (devices.models.failing_rule_q).
    if connection.vendor == "postgresql":
        return Q(failed_rules__has_key=code)
    return failing_rule_q(code)


def tenant_counts(tenant_ids, with_rules=False):
    """{tenant_id: {count name: n}} in one aggregate query: one pass over the tenants' Macs, whatever their number.

    ``with_rules`` adds ``failures`` ({rule code: Macs failing it}, for the codes of the catalogue) to
    each tenant, counted in the same pass.
    """
    tenant_ids = list(tenant_ids)
    codes = CODES if with_rules else ()
    aggregates = {name: Count("id", filter=q) if q else Count("id") for name, q in COUNTS.items()}
    aggregates.update({"rule_%d" % i: Count("id", filter=_rule_q(code)) for i, code in enumerate(codes)})
    empty = dict.fromkeys(aggregates, 0)
    rows = {tenant_id: dict(empty) for tenant_id in tenant_ids}
    if tenant_ids:
        for row in (
            Computer.objects.filter(tenant_id__in=tenant_ids).order_by().values("tenant_id").annotate(**aggregates)
        ):
            rows[row.pop("tenant_id")] = row
    result = {}
    for tenant_id, row in rows.items():
        counts = {name: row[name] for name in COUNTS}
        if with_rules:
            counts["failures"] = {
                code: row["rule_%d" % i] for i, code in enumerate(codes) if row["rule_%d" % i]
            }
        result[tenant_id] = counts
    return result


def daily_series(tenant_ids, days=SERIES_DAYS, today=None):
    """{tenant_id: [snapshot dicts, oldest first]} for the last ``days`` days, in one query."""
    tenant_ids = list(tenant_ids)
    today = today or timezone.now().date()
    since = today - datetime.timedelta(days=days - 1)
    result = {tenant_id: [] for tenant_id in tenant_ids}
    fields = ["date", "total", "compliant", "not_compliant", "not_evaluated", "activated", "deactivated",
              "unresponsive", "registered"]
    for row in (
        ComplianceDailySnapshot.objects.filter(tenant_id__in=tenant_ids, date__gte=since, date__lte=today)
        .order_by("tenant_id", "date").values("tenant_id", *fields)
    ):
        result[row.pop("tenant_id")].append(row)
    return result


def take_snapshots(tenant_ids=None, now=None):
    """Store today's counts (UTC) for each tenant (all active tenants by default); returns how many rows."""
    from portal.models import Tenant

    now = now or timezone.now()
    if tenant_ids is None:
        tenant_ids = list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))
    counts = tenant_counts(tenant_ids)
    for tenant_id, c in counts.items():
        ComplianceDailySnapshot.objects.update_or_create(
            tenant_id=tenant_id,
            date=now.date(),
            defaults={
                "total": c["total"], "compliant": c["compliant"], "not_compliant": c["not_compliant"],
                "not_evaluated": c["compliance_not_evaluated"], "activated": c["activated"],
                "deactivated": c["deactivated"], "unresponsive": c["unresponsive"], "registered": c["registered"],
                "taken_at": now,
            },
        )
    return len(counts)
