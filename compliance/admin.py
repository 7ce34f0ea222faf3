"""Admin for compliance policies, and the per-tenant best-practice view (seed summary, step 7)."""

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from compliance import computer_admin  # noqa: F401 - registers the computer page with its Intune parts
from compliance.models import CompliancePolicy, ComplianceReport
from compliance.report_admin import answer_text, confirm, do_resend, may_operate, payload_html, status_html
from devices.models import SMART_GROUPS, ComplianceStatus, Computer, failing_rule_q, smart_group_q
from devices.rules import CODES, COMPUTER, REGISTERED_GROUP, RULES, USER, get_rule
from portal import tenancy
from portal.admin import ScopedTenantFilter, TenantScopedAdminMixin
from portal.admin_format import (
    badge,
    clipped,
    compliance_badge,
    counters_html,
    duration_text,
    inventory_state_badge,
    short_datetime,
)
from portal.models import SyncRun, Tenant

RULE_FIELDS = [
    "min_os_version", "max_os_version", "min_os_build", "max_os_build", "require_filevault", "require_sip",
    "gatekeeper", "require_auto_login_disabled", "password_min_length", "password_type",
    "password_min_character_sets", "password_expiration_days", "password_history", "screensaver_minutes",
    "max_inventory_age_days",
]


def configured_rules(policy):
    """The rule codes a policy switches on, in catalogue order."""
    return [
        rule.code for rule in RULES.values()
        if rule.scope in (COMPUTER, USER) and rule.policy_fields and not rule.code.endswith("_unreadable")
        and any(getattr(policy, name) not in (None, "", False) for name in rule.policy_fields)
    ]


def requirement_text(policy, rule):
    """What a policy asks of one rule, in words ("at least 12", "14.7.1", "required")."""
    parts = []
    for name in rule.policy_fields:
        value = getattr(policy, name)
        if value in (None, "", False):
            continue
        if value is True:
            parts.append(str(_("required")))
        elif name == "gatekeeper":
            parts.append(str(policy.get_gatekeeper_display()))
        elif name == "password_type":
            parts.append(str(policy.get_password_type_display()))
        elif name in ("password_min_length", "password_min_character_sets", "password_history"):
            parts.append(str(_("at least %(n)s") % {"n": value}))
        elif name in ("password_expiration_days", "screensaver_minutes", "max_inventory_age_days"):
            parts.append(str(_("at most %(n)s") % {"n": value}))
        else:
            parts.append(str(value))
    return ", ".join(parts)


@admin.register(CompliancePolicy)
class CompliancePolicyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "enabled", "rules", "updated_at"]
    list_filter = [("tenant", ScopedTenantFilter), "enabled"]
    list_select_related = ["tenant"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    change_list_template = "admin/compliance/compliancepolicy/change_list.html"
    fieldsets = [
        (None, {"fields": ["tenant", "name", "description", "enabled"]}),
        (_("Device properties"), {"fields": ["min_os_version", "max_os_version", "min_os_build", "max_os_build"]}),
        (
            _("System security"),
            {"fields": ["require_filevault", "require_sip", "gatekeeper", "require_auto_login_disabled"]},
        ),
        (
            _("Password (checked per user account; NotEnforced fails)"),
            {
                "fields": [
                    "password_min_length", "password_type", "password_min_character_sets",
                    "password_expiration_days", "password_history", "screensaver_minutes",
                ]
            },
        ),
        (_("Freshness"), {"fields": ["max_inventory_age_days"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("rules"))
    def rules(self, obj):
        return ", ".join(str(get_rule(code).title) for code in configured_rules(obj)) or "-"

    def get_urls(self):
        view = self.admin_site.admin_view(self.best_practice_view)
        return [
            path("best-practice/", view, name="compliance_compliancepolicy_best_practice"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "best_practice_url": reverse(
            "admin:compliance_compliancepolicy_best_practice"
        )}
        return super().changelist_view(request, extra_context)

    # -- The best-practice view ---------------------------------------------------------------

    def best_practice_view(self, request):
        """Per tenant: each rule, how many Macs fail it, the Jamf remedy and a link to those Macs."""
        tenants = list(Tenant.objects.for_user(request.user).only("pk", "name", "slug"))
        if not tenants:
            raise PermissionDenied
        tenant_id = request.GET.get("tenant")
        if tenant_id:
            tenant = next((t for t in tenants if str(t.pk) == tenant_id), None)
            if tenant is None:
                raise Http404(_("No such tenant."))
        else:
            tenant = tenants[0]
        tenant = Tenant.objects.get(pk=tenant.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Best practice: %(tenant)s") % {"tenant": tenant.name},
            "tenant": tenant,
            "tenants": tenants,
            **best_practice(tenant),
        }
        return TemplateResponse(request, "admin/compliance/best_practice.html", context)


def computers_url(tenant, **params):
    return "%s?%s" % (reverse("admin:devices_computer_changelist"), urlencode({"tenant__id__exact": tenant.pk,
                                                                              **params}))


def best_practice(tenant):
    """The numbers of the best-practice view, from the stored evaluation results (two queries)."""
    policies = list(CompliancePolicy.objects.filter(tenant=tenant).order_by("name"))
    enabled = [policy for policy in policies if policy.enabled]
    macs = Computer.objects.filter(tenant=tenant)
    aggregates = {
        "total": Count("pk"),
        "evaluated": Count("pk", filter=Q(evaluated_at__isnull=False)),
        "not_compliant": Count("pk", filter=Q(compliance_status=ComplianceStatus.NOT_COMPLIANT)),
        **{key: Count("pk", filter=smart_group_q(key)) for key, _label in SMART_GROUPS},
    }
    registered = smart_group_q("registered")
    for index, code in enumerate(CODES):
        aggregates["rule_%d" % index] = Count("pk", filter=failing_rule_q(code))
        aggregates["rule_registered_%d" % index] = Count("pk", filter=failing_rule_q(code) & registered)
    counts = macs.aggregate(**aggregates)

    rows = []
    for index, code in enumerate(CODES):
        rule = RULES[code]
        failing = counts["rule_%d" % index]
        requirements = [
            {"policy": policy.name, "text": requirement_text(policy, rule)}
            for policy in enabled if code in configured_rules(policy)
        ]
        if code == "validity_expired":
            requirements = [{"policy": _("tenant rule"), "text": _("inventory within %(days)d days") % {
                "days": tenant.compliance_validity_days}}]
        elif code == "no_policy" and (enabled or tenant.no_policy_compliant):
            requirements = []
        elif code == "not_managed":
            requirements = [{"policy": _("always"), "text": _("managed by Jamf Pro")}]
        elif code == "no_policy":
            requirements = [{"policy": _("tenant rule"), "text": _("Macs without a policy are not compliant")}]
        if not requirements and not failing:
            continue
        rows.append({
            "rule": rule,
            "requirements": requirements,
            "failing": failing,
            "failing_registered": counts["rule_registered_%d" % index],
            "url": computers_url(tenant, failing_rule=code),
            "registered_url": computers_url(tenant, failing_rule=code, smart_group="registered"),
        })
    labels = dict(SMART_GROUPS, registered=_("Registered (Company Portal and an Entra device ID)"))
    order = ["registered", "registered_compliant", "without_company_portal", "portal_not_registered",
             "account_not_onboarded", "unresponsive"]
    return {
        "policies": policies,
        "enabled_policies": enabled,
        "counts": counts,
        "rows": rows,
        "groups": [
            {"label": labels[key], "count": counts[key], "url": computers_url(tenant, smart_group=key)}
            for key in order
        ],
        "not_compliant_url": computers_url(tenant, compliance_status__exact=ComplianceStatus.NOT_COMPLIANT),
        "all_url": computers_url(tenant),
        "registered_group": REGISTERED_GROUP,
    }


# -- Reports to Intune and background runs (compliance/report_admin.py has the shared pieces) -----------------


class _ReadOnlyHistoryMixin(TenantScopedAdminMixin):
    """History is written by the portal only: everybody views it, nobody edits it."""

    change_role = None

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ComplianceReport)
class ComplianceReportAdmin(_ReadOnlyHistoryMixin, admin.ModelAdmin):
    """Every report to Intune: the outbox (pending) and the history, with Intune's answer."""

    # Made when, for which Mac and user, with what outcome; the payload and timings are on the report's page.
    list_display = [
        "made", "tenant", "mac_and_user", "status_colour", "compliance", "inventory_state_badge", "reason", "answer",
    ]
    list_filter = [("tenant", ScopedTenantFilter), "status", "kind", "reason", "inventory_state"]
    list_select_related = ["tenant", "computer"]
    search_fields = ["computer__serial_number", "computer__name", "username", "=entra_device_id", "=entra_user_id"]
    show_full_result_count = False
    list_per_page = 100
    actions = ["resend_selected"]
    fields = [
        "tenant", "computer", "user_account", "username", "entra_device_id", "entra_user_id", "kind", "reason",
        "requested_by", "inventory_state", "compliance_status", "status", "latest", "message_id", "batched_at",
        "attempts", "next_attempt_at", "error_code", "error_detail", "created_at", "sent_at",
        "finished_at", "payload_pretty", "payload_hash",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.defer("payload") if request.resolver_match.url_name.endswith("changelist") else queryset

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in ("computer", "computer__id__exact") or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("made"), ordering="created_at")
    def made(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description=_("Mac and user"), ordering="computer__name")
    def mac_and_user(self, obj):
        return format_html('{}<span class="secondary">{}</span>', obj.computer, obj.username or "-")

    @admin.display(description=_("status"), ordering="status")
    def status_colour(self, obj):
        return status_html(obj)

    @admin.display(description=_("compliance"), ordering="compliance_status")
    def compliance(self, obj):
        if obj.kind != ComplianceReport.Kind.REPORT:
            return "-"
        return compliance_badge(obj.compliance_status, obj.get_compliance_status_display())

    @admin.display(description=_("inventory state"), ordering="inventory_state")
    def inventory_state_badge(self, obj):
        if obj.kind != ComplianceReport.Kind.REPORT:
            return "-"
        return inventory_state_badge(obj.inventory_state, obj.get_inventory_state_display())

    @admin.display(description=_("Intune's answer"))
    def answer(self, obj):
        if obj.status in (ComplianceReport.Status.COMPLETED, ComplianceReport.Status.ACCEPTED):
            return "-"  # the status says it all
        return clipped(answer_text(obj), 90)

    @admin.display(description=_("payload as sent"))
    def payload_pretty(self, obj):
        return payload_html(obj)

    def has_intune_operate_permission(self, request):
        return may_operate(request)

    @admin.action(description=_("Re-send these Macs' current state to Intune"), permissions=["intune_operate"])
    def resend_selected(self, request, queryset):
        from devices.models import Computer

        queryset = queryset.filter(tenant__in=Tenant.objects.for_user(request.user, tenancy.OPERATOR))
        answer = confirm(self, request, queryset, "resend_selected", _("Re-send to Intune"), _(
            "Send the current state of the Macs of these reports to Intune again, for each registered user?"),
            list(Computer.objects.filter(pk__in=queryset.values("computer_id")).select_related("tenant")))
        if answer is not True:
            return answer
        do_resend(self, request, Computer.objects.filter(pk__in=queryset.values("computer_id")))
        return None


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnlyHistoryMixin, admin.ModelAdmin):
    """One row per background run: evaluate, deliver, status read-back, provisioning."""

    list_display = ["started", "tenant", "kind", "status_badge", "duration_text", "summary", "short_error"]
    list_filter = [("tenant", ScopedTenantFilter), "kind", "status"]
    list_select_related = ["tenant"]
    show_full_result_count = False
    list_per_page = 100
    fields = ["tenant", "kind", "status_badge", "started_at", "finished_at", "duration_text", "all_counters", "error"]
    readonly_fields = fields
    STATUS_TONES = {"succeeded": "ok", "partial": "warn", "failed": "bad", "running": "info"}

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, obj):
        return short_datetime(obj.started_at)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), self.STATUS_TONES.get(obj.status, "quiet"))

    @admin.display(description=_("duration"))
    def duration_text(self, obj):
        return duration_text(obj.duration)

    @admin.display(description=_("counters"))
    def summary(self, obj):
        return counters_html(obj.counters, limit=6)

    @admin.display(description=_("counters"))
    def all_counters(self, obj):
        return counters_html(obj.counters)

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return clipped(obj.error, 80) if obj.error else "-"
