"""Admin for Macs, their user accounts and the raw inventory events (all read-only: Jamf Pro owns them).

The computer page's Intune parts (history per user, retire / re-send / delete, the live explanation of failed
rules) are added by ``compliance.computer_admin``, which registers its subclass in place of this one: devices
never imports compliance (docs/architecture.md).
"""

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from devices.models import (
    RULE_CODE_RE,
    SMART_GROUPS,
    ComplianceStatus,
    Computer,
    InventoryEvent,
    UserAccount,
    failing_rule_q,
    smart_group_q,
)
from devices.rules import CODES, describe, get_rule
from portal import tenancy
from portal.admin import ScopedTenantFilter, TenantScopedAdminMixin


class CompanyPortalFilter(admin.SimpleListFilter):
    title = _("Company Portal")
    parameter_name = "company_portal"

    def lookups(self, request, model_admin):
        return [("yes", _("Installed")), ("no", _("Not installed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(company_portal_version__isnull=False)
        if self.value() == "no":
            return queryset.filter(company_portal_version__isnull=True)
        return queryset


def _counting_queryset(request, model_admin):
    """The rows a filter's counts are taken over: the user's Macs, in the chosen tenant if one is chosen."""
    queryset = model_admin.get_queryset(request)
    tenant_id = request.GET.get("tenant__id__exact")
    if tenant_id and tenant_id.isdigit():
        queryset = queryset.filter(tenant_id=tenant_id)
    return queryset


class SmartGroupFilter(admin.SimpleListFilter):
    """The smart groups of the seed (steps 3, 4, 7), each with its count, in one query."""

    title = _("smart group")
    parameter_name = "smart_group"

    def lookups(self, request, model_admin):
        counts = _counting_queryset(request, model_admin).aggregate(
            **{key: Count("pk", filter=smart_group_q(key)) for key, _label in SMART_GROUPS}
        )
        return [(key, "%s (%d)" % (label, counts[key])) for key, label in SMART_GROUPS]

    def queryset(self, request, queryset):
        if self.value() in dict(SMART_GROUPS):
            return queryset.smart_group(self.value())
        return queryset


class FailingRuleFilter(admin.SimpleListFilter):
    """Macs failing a given compliance rule; lists the rules some Mac fails, with counts."""

    title = _("failing rule")
    parameter_name = "failing_rule"

    def lookups(self, request, model_admin):
        counts = _counting_queryset(request, model_admin).aggregate(
            **{"rule_%d" % i: Count("pk", filter=failing_rule_q(code)) for i, code in enumerate(CODES)}
        )
        return [
            (code, "%s (%d)" % (get_rule(code).title, counts["rule_%d" % i]))
            for i, code in enumerate(CODES)
            if counts["rule_%d" % i] or code == self.value()
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not RULE_CODE_RE.match(value):
            return queryset.none()
        return queryset.failing_rule(value)


def failed_rules_html(codes, details=None):
    """The failed rules as a list: sentence, what exactly failed, and the Jamf Pro remedy."""
    if not codes:
        return "-"
    details = details or {}
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><strong>{}</strong>{} <code>{}</code><br><span class=\"help\">{}: {}</span></li>",
            (
                (rule.sentence, " (%s)" % details[rule.code] if details.get(rule.code) else "", rule.code,
                 _("Jamf Pro remedy"), rule.remedy)
                for rule in describe(codes)
            ),
        ),
    )


class ReadOnlyInventoryMixin(TenantScopedAdminMixin):
    """Inventory comes from Jamf Pro: nobody edits it here, MSP staff included."""

    change_role = None

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UserAccountInline(ReadOnlyInventoryMixin, admin.TabularInline):
    model = UserAccount
    extra = 0
    can_delete = False
    fields = [
        "username", "full_name", "email", "entra_state", "entra_user_id", "entra_device_id", "registration_state",
        "compliance_status", "failed_rule_titles", "password_min_length", "password_type",
        "password_min_complex_characters", "password_max_age_days", "password_history_depth",
    ]
    readonly_fields = fields

    @admin.display(description=_("failed rules"))
    def failed_rule_titles(self, obj):
        return ", ".join(str(rule.title) for rule in describe(obj.failed_rules)) or "-"

    def get_queryset(self, request):
        return UserAccount.objects.for_user(request.user)


@admin.register(Computer)
class ComputerAdmin(ReadOnlyInventoryMixin, admin.ModelAdmin):
    list_display = [
        "name", "serial_number", "tenant", "model", "os_version", "last_check_in", "company_portal",
        "registration_state", "inventory_state", "compliance", "failed_rule_titles",
    ]
    list_filter = [
        ("tenant", ScopedTenantFilter), SmartGroupFilter, "compliance_status", FailingRuleFilter, "inventory_state",
        "registration_state", "managed", "filevault_state", "sip", "gatekeeper", CompanyPortalFilter,
        "architecture", "os_name",
    ]
    search_fields = ["serial_number", "name", "udid", "entra_device_id", "jamf_id"]
    list_select_related = ["tenant"]
    list_per_page = 100
    show_full_result_count = False
    date_hierarchy = None
    inlines = [UserAccountInline]
    readonly_fields = ["failed_rules_explained"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "jamf_id", "udid", "serial_number", "managed", "retired_at"]}),
        (
            _("Compliance"),
            {
                "fields": [
                    "compliance_status", "inventory_state", "registration_state", "failed_rules_explained",
                    "evaluated_at",
                ]
            },
        ),
        (
            _("Check-in and registration"),
            {
                "fields": [
                    "last_check_in", "last_inventory_update", "last_enrolled", "entra_device_id",
                    "company_portal_version", "company_portal_seen_at",
                ]
            },
        ),
        (
            _("Security"),
            {"fields": ["filevault_state", "filevault2_status", "sip", "gatekeeper", "auto_login_disabled"]},
        ),
        (_("Operating system"), {"fields": ["os_name", "os_version", "os_build", "platform", "ad_status"]}),
        (
            _("Hardware"),
            {
                "fields": [
                    "make", "model", "model_identifier", "architecture", "processor_type", "processor_speed_mhz",
                    "processor_count", "core_count", "bus_speed_mhz", "cache_size_kb", "total_ram_mb",
                    "open_ram_slots", "battery_capacity_percent", "boot_rom", "smc_version", "mac_address",
                    "alt_mac_address", "nic_speed",
                ]
            },
        ),
        (_("User and location"), {"fields": ["username", "user_email"]}),
    ]

    @admin.display(description=_("Company Portal"), boolean=True, ordering="company_portal_version")
    def company_portal(self, obj):
        return obj.company_portal_version is not None

    @admin.display(description=_("compliant"), boolean=True, ordering="compliance_status")
    def compliance(self, obj):
        if obj.compliance_status is None:
            return None
        return obj.compliance_status == ComplianceStatus.COMPLIANT

    @admin.display(description=_("failed rules"))
    def failed_rule_titles(self, obj):
        return ", ".join(str(rule.title) for rule in describe(obj.failed_rules)) or "-"

    @admin.display(description=_("failed rules"))
    def failed_rules_explained(self, obj):
        """The stored failed rules with their sentences and remedies."""
        return failed_rules_html(obj.failed_rules)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Exact matches on identifiers are what people paste; names match by substring.
        return queryset.filter(
            Q(serial_number__iexact=term) | Q(udid__iexact=term) | Q(entra_device_id__iexact=term)
            | Q(jamf_id=term) | Q(name__icontains=term)
        ), False


@admin.register(InventoryEvent)
class InventoryEventAdmin(ReadOnlyInventoryMixin, admin.ModelAdmin):
    """Every body Jamf Pro sent (webhooks) and every API pull, as stored before processing."""

    list_display = ["received_at", "tenant", "source", "event_type", "status", "computer", "short_error"]
    list_filter = [("tenant", ScopedTenantFilter), "source", "event_type", "status"]
    list_select_related = ["tenant", "computer"]
    search_fields = ["computer__serial_number", "computer__name", "computer__jamf_id", "error"]
    show_full_result_count = False
    list_per_page = 100
    actions = ["process_again"]
    readonly_fields = [
        "tenant", "source", "event_type", "received_at", "event_timestamp", "status", "error", "processed_at",
        "computer", "body",
    ]
    fields = readonly_fields

    @admin.display(description=_("note"))
    def short_error(self, obj):
        return obj.error if len(obj.error) <= 80 else obj.error[:79] + "\u2026"

    @admin.display(description=_("raw body"))
    def body(self, obj):
        import json

        try:
            text = json.dumps(json.loads(obj.raw_body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.raw_body  # shown exactly as received (a rejected body)
        return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>', text)

    def has_process_again_permission(self, request):
        return self._may(request, None, tenancy.OPERATOR)

    @admin.action(description=_("Process the selected failed or pending webhook events again"),
                  permissions=["process_again"])
    def process_again(self, request, queryset):
        from django_q.tasks import async_task

        allowed = InventoryEvent.objects.for_user(request.user, tenancy.OPERATOR)
        ids = list(
            queryset.filter(pk__in=allowed.values("pk"), source=InventoryEvent.Source.WEBHOOK,
                            status__in=[InventoryEvent.Status.FAILED, InventoryEvent.Status.PENDING])
            .values_list("pk", flat=True)
        )
        for pk in ids:
            async_task("devices.tasks.process_event", pk, task_name="jamf-event-%d" % pk, group="jamf-events")
        self.message_user(request, _("%(count)d events queued for processing.") % {"count": len(ids)})
