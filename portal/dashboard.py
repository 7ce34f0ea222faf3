"""The admin index: every tenant's health at a glance, the tenants needing attention first (issue 8).

MSP staff see every tenant; a customer's staff see their own tenants only (``Tenant.objects.for_user``).
Per tenant: the last connection test, the last successful delivery to Intune, pending and failed
reports, the days until the last valid credential expires (the tenant's own client secrets in the legacy
mode or an override, else the MSP's partner application), Intune's state of the compliance partner (from
the last connection test), the Macs by compliance, and the
30-day compliance trend from the daily snapshots (``compliance.reports.take_snapshots``), drawn
on the server as inline SVG with a title, a description and the numbers as a table.

The whole page costs a fixed number of queries, whatever the number of tenants and Macs: one for the
tenants (with their secrets' expiry aggregated), two for the partner application and its credentials, one
for the user's roles, and one each for the
reports (``compliance.sync.tenant_health``), the Macs (``compliance.reports.tenant_counts``) and the
snapshots (``compliance.reports.daily_series``).
"""

import datetime
import functools
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal import tenancy
from portal.models import Membership, Tenant
from portal.partner import partner_application

TREND_DAYS = 30

# Levels of a reason for attention, and their weight in the ordering: one critical issue outranks
# any number of warnings, one warning any number of notices.
CRITICAL, WARNING, NOTICE = "critical", "warning", "notice"
WEIGHTS = {CRITICAL: 10_000, WARNING: 100, NOTICE: 1}


def _threshold(name, default):
    """A dashboard threshold, overridable with ``settings.DASHBOARD_THRESHOLDS = {name: value}``."""
    return getattr(settings, "DASHBOARD_THRESHOLDS", {}).get(name, default)


@dataclass(frozen=True)
class Issue:
    level: str
    text: str
    url: str = ""


@dataclass
class TenantHealth:
    """One row of the dashboard."""

    tenant: Tenant
    role: str
    health: dict
    counts: dict
    series: list
    secret_expires: datetime.datetime | None
    secret_days: int | None
    today: datetime.date
    issues: list = field(default_factory=list)
    configured: bool = False  # the Entra tenant and an application to reach it with are known
    own_app: bool = False  # the tenant's own app registration (legacy inventory mode or an override)

    @property
    def score(self):
        return sum(WEIGHTS[issue.level] for issue in self.issues)

    @property
    def level(self):
        """The worst level of the tenant's issues, or "ok"."""
        for level in (CRITICAL, WARNING, NOTICE):
            if any(issue.level == level for issue in self.issues):
                return level
        return "ok"

    @property
    def evaluated(self):
        return self.counts["compliant"] + self.counts["not_compliant"]

    @property
    def not_compliant_share(self):
        """Not compliant among the evaluated Macs, 0.0 to 1.0 (0 when none is evaluated)."""
        return self.counts["not_compliant"] / self.evaluated if self.evaluated else 0.0

    @property
    def compliant_percent(self):
        return round(100 * self.counts["compliant"] / self.counts["total"]) if self.counts["total"] else None

    @property
    def connection_configured(self):
        return self.configured

    @property
    def partner_state(self):
        """Intune's state of our compliance partner as the last connection test read it ('' when unknown)."""
        summary = self.tenant.intune_partner or {}
        if self.own_app or "found" not in summary:
            return ""
        return summary.get("state", "") if summary["found"] else "missing"

    @property
    def may_operate(self):
        return tenancy.ROLE_RANK[self.role] >= tenancy.ROLE_RANK[tenancy.OPERATOR]

    @functools.cached_property
    def trend(self):
        return trend_chart(
            self.series, title=_("%(tenant)s: compliant Macs over %(days)d days") % {
                "tenant": self.tenant.name, "days": TREND_DAYS},
            chart_id="trend-%d" % self.tenant.pk, today=self.today, compact=True,
        )

    # Links into the admin, filtered to this tenant.
    def _changelist(self, name, **params):
        return "%s?%s" % (reverse("admin:%s_changelist" % name), urlencode({"tenant__id__exact": self.tenant.pk,
                                                                          **params}))

    @property
    def change_url(self):
        return reverse("admin:portal_tenant_change", args=[self.tenant.pk])

    @property
    def test_connection_url(self):
        return reverse("admin:portal_tenant_test_connection", args=[self.tenant.pk])

    @functools.cached_property
    def urls(self):
        return {
            "macs": self._changelist("devices_computer"),
            "compliant": self._changelist("devices_computer", compliance_status__exact="compliant"),
            "not_compliant": self._changelist("devices_computer", compliance_status__exact="notCompliant"),
            "not_evaluated": self._changelist("devices_computer", compliance_status__isnull="True"),
            "pending": self._changelist("compliance_compliancereport", status__exact="pending"),
            "failed": self._changelist("compliance_compliancereport", status__exact="failed"),
        }


def _age_text(delta):
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    days = hours // 24
    return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def attention(row, now):
    """Why a tenant needs attention, worst first: connection, failed reports, secret, old pending, compliance."""
    tenant, health, issues = row.tenant, row.health, []
    test_url = row.test_connection_url if row.may_operate else row.change_url  # the test needs an operator
    if not tenant.is_active:
        return issues
    if not row.connection_configured:
        issues.append(Issue(NOTICE, _("Not connected to Entra ID yet (no Entra tenant, or no application)."),
                            row.change_url))
    elif not row.own_app and tenant.consent_granted_at is None and tenant.last_test_ok is not True:
        issues.append(Issue(NOTICE, _("Admin consent not granted yet (Grant admin consent)."), row.change_url))
    elif tenant.last_test_ok is False:
        issues.append(Issue(CRITICAL, _("The last connection test failed."), test_url))
    elif tenant.last_test_ok is None:
        issues.append(Issue(WARNING, _("The connection was never tested."), test_url))

    if health["failed"]:
        issues.append(Issue(CRITICAL, ngettext(
            "%(n)d report to Intune failed.", "%(n)d reports to Intune failed.", health["failed"]
        ) % {"n": health["failed"]}, row.urls["failed"]))

    if row.partner_state and row.partner_state != "enabled":
        text = (_("Intune does not list this partner (Partner compliance management).")
                if row.partner_state == "missing" else
                _("Intune reports the compliance partner as %(state)s.") % {"state": row.partner_state})
        issues.append(Issue(WARNING, text, test_url))

    if row.connection_configured and row.own_app:
        warn_days = max(settings.SECRET_EXPIRY_WARNING_DAYS)
        critical_days = _threshold("secret_critical_days", 7)
        if row.secret_expires is None:
            issues.append(Issue(CRITICAL, _("No valid client secret: the portal cannot reach Intune."),
                                row.change_url))
        elif row.secret_days <= critical_days:
            issues.append(Issue(CRITICAL, ngettext(
                "The last client secret expires in %(n)d day.", "The last client secret expires in %(n)d days.",
                row.secret_days) % {"n": row.secret_days}, row.change_url))
        elif row.secret_days < warn_days:
            issues.append(Issue(WARNING, ngettext(
                "The last client secret expires in %(n)d day.", "The last client secret expires in %(n)d days.",
                row.secret_days) % {"n": row.secret_days}, row.change_url))

    age = health["oldest_pending_age"]
    if age is not None:
        critical_age = datetime.timedelta(minutes=_threshold("pending_critical_minutes", 6 * 60))
        warning_age = datetime.timedelta(minutes=_threshold("pending_warning_minutes", 30))
        if age >= warning_age:
            issues.append(Issue(
                CRITICAL if age >= critical_age else WARNING,
                ngettext("%(n)d report pending, the oldest for %(age)s.",
                         "%(n)d reports pending, the oldest for %(age)s.", health["pending"])
                % {"n": health["pending"], "age": _age_text(age)},
                row.urls["pending"],
            ))

    share = row.not_compliant_share
    if row.evaluated and share >= _threshold("not_compliant_warning_share", 0.2):
        issues.append(Issue(
            CRITICAL if share >= _threshold("not_compliant_critical_share", 0.5) else WARNING,
            _("%(percent)d%% of the evaluated Macs are not compliant (%(n)d of %(total)d).") % {
                "percent": round(100 * share), "n": row.counts["not_compliant"], "total": row.evaluated},
            row.urls["not_compliant"],
        ))
    return issues


def tenant_rows(user, now=None):
    """The dashboard's rows for ``user``: their tenants, the ones needing attention first. Five queries."""
    from compliance.reports import daily_series, tenant_counts
    from compliance.sync import tenant_health

    now = now or timezone.now()
    tenants = list(
        Tenant.objects.for_user(user)
        .annotate(last_valid_secret=Max("client_secrets__expires_at", filter=Q(client_secrets__expires_at__gt=now)))
        .only("pk", "name", "slug", "is_active", "entra_tenant", "client_id", "use_own_app", "reporting_mode",
              "consent_granted_at", "intune_partner", "intune_enabled", "last_test_at", "last_test_ok",
              "last_test_message")
        .order_by("name")
    )
    if not tenants:
        return []
    ids = [t.pk for t in tenants]
    if tenancy.is_msp_staff(user):
        roles = dict.fromkeys(ids, tenancy.ADMIN)
    else:
        roles = dict(Membership.objects.filter(user=user, tenant_id__in=ids).values_list("tenant_id", "role"))
    health = tenant_health(ids, now=now)
    counts = tenant_counts(ids)
    series = daily_series(ids, days=TREND_DAYS, today=now.date())
    partner = partner_application()
    partner_expires = partner.last_expiry(now) if partner else None
    rows = []
    for tenant in tenants:
        own_app = tenant.uses_own_app
        expires = tenant.last_valid_secret if own_app else partner_expires
        configured = bool(tenant.entra_tenant and (tenant.client_id if own_app else partner is not None))
        row = TenantHealth(
            tenant=tenant, role=roles.get(tenant.pk, tenancy.VIEWER), health=health[tenant.pk],
            counts=counts[tenant.pk], series=series[tenant.pk], secret_expires=expires,
            secret_days=(expires - now).days if expires else None, today=now.date(),
            configured=configured, own_app=own_app,
        )
        row.issues = attention(row, now)
        rows.append(row)
    rows.sort(key=lambda r: (not r.tenant.is_active, -r.score, -r.not_compliant_share, r.tenant.name.lower()))
    return rows


def fleet_series(rows):
    """The snapshots of all ``rows`` summed per day, for the days that have any.

    A tenant without a snapshot on a day (the hourly task did not run for it) counts with its last
    earlier one, so a missing row does not show as a drop of the whole fleet.
    """
    keys = ("total", "compliant", "not_compliant", "not_evaluated")
    dates = sorted({point["date"] for row in rows for point in row.series})
    totals = {day: dict.fromkeys(keys, 0) | {"date": day} for day in dates}
    for row in rows:
        by_date = {point["date"]: point for point in row.series}
        last = None
        for day in dates:
            last = by_date.get(day, last)
            if last is not None:
                for key in keys:
                    totals[day][key] += last[key]
    return [totals[day] for day in dates]


# -- the chart --------------------------------------------------------------------------------------


@dataclass
class Chart:
    """An SVG line chart of the compliant and not-compliant shares per day, computed for the template."""

    id: str
    title: str
    desc: str
    width: int
    height: int
    compact: bool
    lines: list  # [{"key", "label", "segments": ["x,y x,y", ...], "dots": [(x, y)]}]
    grid: list  # [{"y", "label"}]
    x_labels: list  # [{"x", "label", "anchor"}]
    rows: list  # the data table: [{"date", "total", "compliant", "not_compliant", "not_evaluated", "percent"}]
    plot: dict  # left, top, right, bottom

    @property
    def empty(self):
        return not self.rows


def _percent(part, total):
    return 100.0 * part / total if total else None


def trend_chart(points, title, chart_id, days=TREND_DAYS, today=None, compact=False):
    """A :class:`Chart` of ``points`` (snapshot dicts, oldest first) over the ``days`` days up to ``today``."""
    today = today or (points[-1]["date"] if points else timezone.now().date())
    start = today - datetime.timedelta(days=days - 1)
    by_date = {p["date"]: p for p in points if start <= p["date"] <= today}
    if compact:
        width, height, plot = 160, 40, {"left": 2, "top": 3, "right": 158, "bottom": 37}
    else:
        width, height, plot = 720, 240, {"left": 44, "top": 12, "right": 704, "bottom": 208}
    span_x = plot["right"] - plot["left"]
    span_y = plot["bottom"] - plot["top"]

    def x_of(index):
        return round(plot["left"] + span_x * index / max(days - 1, 1), 1)

    def y_of(percent):
        return round(plot["bottom"] - span_y * percent / 100.0, 1)

    lines = []
    for key, label in (("compliant", _("Compliant")), ("not_compliant", _("Not compliant"))):
        segments, current, dots = [], [], []
        for index in range(days):
            point = by_date.get(start + datetime.timedelta(days=index))
            value = _percent(point[key], point["total"]) if point else None
            if value is None:  # a day without a snapshot breaks the line
                if current:
                    segments.append(current)
                current = []
                continue
            xy = (x_of(index), y_of(value))
            current.append(xy)
            dots.append(xy)
        if current:
            segments.append(current)
        lines.append({
            "key": key, "label": label,
            "segments": [" ".join("%s,%s" % xy for xy in seg) for seg in segments if len(seg) > 1],
            "dots": dots,
        })

    rows = []
    for day in sorted(by_date):
        p = by_date[day]
        percent = _percent(p["compliant"], p["total"])
        rows.append({**p, "percent": round(percent) if percent is not None else None})
    if rows:
        first, last = rows[0], rows[-1]
        lowest = min((r for r in rows if r["percent"] is not None), key=lambda r: r["percent"], default=None)
        desc = _(
            "Share of Macs reported compliant per day, %(start)s to %(end)s: %(first)s%% on %(first_date)s, "
            "%(last)s%% on %(last_date)s (%(n)d of %(total)d Macs compliant, %(nc)d not compliant)."
        ) % {
            "start": start.isoformat(), "end": today.isoformat(), "first": first["percent"],
            "first_date": first["date"].isoformat(), "last": last["percent"], "last_date": last["date"].isoformat(),
            "n": last["compliant"], "total": last["total"], "nc": last["not_compliant"],
        }
        if lowest is not None and lowest["percent"] != last["percent"]:
            desc += " " + _("Lowest: %(p)s%% on %(date)s.") % {"p": lowest["percent"],
                                                               "date": lowest["date"].isoformat()}
    else:
        desc = _("No daily snapshot yet in the last %(days)d days.") % {"days": days}
    grid = [{"y": y_of(p), "label": "%d%%" % p} for p in (0, 50, 100)]
    x_labels = [
        {"x": x_of(0), "label": start.strftime("%b %d"), "anchor": "start"},
        {"x": x_of(days - 1), "label": today.strftime("%b %d"), "anchor": "end"},
    ]
    return Chart(id=chart_id, title=title, desc=desc, width=width, height=height, compact=compact, lines=lines,
                 grid=grid, x_labels=x_labels, rows=rows, plot=plot)


# -- the view ---------------------------------------------------------------------------------------


def dashboard_context(request, now=None):
    now = now or timezone.now()
    rows = tenant_rows(request.user, now=now)
    fleet = fleet_series(rows)
    active = [r for r in rows if r.tenant.is_active]
    totals = {
        "tenants": len(rows),
        "attention": sum(1 for r in active if r.level in (CRITICAL, WARNING)),
        "macs": sum(r.counts["total"] for r in rows),
        "compliant": sum(r.counts["compliant"] for r in rows),
        "not_compliant": sum(r.counts["not_compliant"] for r in rows),
        "pending": sum(r.health["pending"] for r in rows),
        "failed": sum(r.health["failed"] for r in rows),
    }
    totals["percent"] = round(100 * totals["compliant"] / totals["macs"]) if totals["macs"] else None
    chart = trend_chart(
        fleet, title=_("Compliant Macs, all your tenants, last %(days)d days") % {"days": TREND_DAYS},
        chart_id="fleet-trend", today=now.date(),
    )
    is_staff = tenancy.is_msp_staff(request.user)
    partner_warning = ""
    if is_staff:
        from compliance.connection import partner_credential_warning

        partner_warning = partner_credential_warning(now=now)
    return {"dashboard": {"rows": rows, "totals": totals, "chart": chart, "now": now,
                          "is_msp_staff": is_staff, "partner_warning": partner_warning}}


def admin_index(request, extra_context=None):
    """The admin index with the dashboard above the list of apps (routed at ``/admin/`` in portal/urls.py)."""
    return admin.site.index(request, extra_context={**dashboard_context(request), **(extra_context or {})})
