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
    Computer,
    InventoryEvent,
    UserAccount,
    failing_rule_q,
    smart_group_q,
)
from devices.rules import CODES, describe, get_rule
from portal import tenancy
from portal.admin import ScopedTenantFilter, TenantScopedAdminMixin
from portal.admin_format import REGISTRATION_TONES, ago, badge, compliance_badge, inventory_state_badge


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


# Short words for the list column; the full state is the badge's hover text and the Mac page's value.
REGISTRATION_SHORT = {"account_not_onboarded": _("Not onboarded?")}


class CountedFilter(admin.SimpleListFilter):
    """A filter whose choices always carry their counts, taken over the list as the other filters narrow it.

    Django's facets do exactly that (the rows the changelist would show with this filter left out), so the
    counts are the facet query, asked for even when the "Show counts" toggle is off: one aggregate query.
    ``conditions`` gives each choice's condition as a Q; ``hide_empty`` leaves out choices with no rows.
    """

    hide_empty = False

    def conditions(self):
        raise NotImplementedError

    def get_facet_counts(self, pk_attname, filtered_qs):
        conditions = self.conditions()
        return {
            "%d__c" % i: Count(pk_attname, filter=conditions[key])
            for i, (key, _label) in enumerate(self.lookup_choices) if key in conditions
        }

    def choices(self, changelist):
        counts = self.get_facet_queryset(changelist)
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("All"),
        }
        for i, (key, title) in enumerate(self.lookup_choices):
            count = counts.get("%d__c" % i, 0)
            if self.hide_empty and not count and str(key) != self.value():
                continue
            yield {
                "selected": self.value() == str(key),
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": "%s (%d)" % (title, count),
            }


class SmartGroupFilter(CountedFilter):
    """The smart groups of the seed (steps 3, 4, 7), each with its count under the other filters."""

    title = _("smart group")
    parameter_name = "smart_group"

    def lookups(self, request, model_admin):
        return SMART_GROUPS

    def conditions(self):
        return {key: smart_group_q(key) for key, _label in SMART_GROUPS}

    def queryset(self, request, queryset):
        if self.value() in dict(SMART_GROUPS):
            return queryset.smart_group(self.value())
        return queryset


class FailingRuleFilter(CountedFilter):
    """Macs failing a given compliance rule: the rules some listed Mac fails, with counts."""

    title = _("failing rule")
    parameter_name = "failing_rule"
    hide_empty = True

    def lookups(self, request, model_admin):
        return [(code, get_rule(code).title) for code in CODES]

    def conditions(self):
        return {code: failing_rule_q(code) for code in CODES}

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
    """A Mac's user accounts: who, their Entra registration and compliance, their password settings in one cell."""

    model = UserAccount
    extra = 0
    can_delete = False
    verbose_name_plural = _("user accounts")
    fields = [
        "user_summary", "entra_state", "entra_ids", "registration_state", "compliance", "failed_rule_titles",
        "password_summary",
    ]
    readonly_fields = fields

    @admin.display(description=_("user"))
    def user_summary(self, obj):
        details = [value for value in (obj.full_name, obj.email) if value and value != obj.username]
        return format_html(
            "<strong>{}</strong>{}", obj.username,
            format_html_join("", '<span class="help">{}</span>', ((value,) for value in details)),
        )

    @admin.display(description=_("Entra user and device IDs"))
    def entra_ids(self, obj):
        if not (obj.entra_user_id or obj.entra_device_id):
            return "-"
        return format_html('<code title="{}">{}</code><span class="help" title="{}">{}</span>',
                           _("Entra user ID"), obj.entra_user_id or "-", _("Entra device ID"),
                           obj.entra_device_id or "-")

    @admin.display(description=_("compliance"))
    def compliance(self, obj):
        return compliance_badge(obj.compliance_status, obj.get_compliance_status_display())

    @admin.display(description=_("failed rules"))
    def failed_rule_titles(self, obj):
        return ", ".join(str(rule.title) for rule in describe(obj.failed_rules)) or "-"

    @admin.display(description=_("password settings"))
    def password_summary(self, obj):
        """The account's password policy as Jamf Pro reports it, in one line."""
        parts = [
            (_("type"), obj.password_type),
            (_("min length"), obj.password_min_length),
            (_("complex characters"), obj.password_min_complex_characters),
            (_("max age (days)"), obj.password_max_age_days),
            (_("history"), obj.password_history_depth),
        ]
        shown = [(name, value) for name, value in parts if value not in (None, "")]
        if not shown:
            return "-"
        return format_html_join(
            "", '<span class="pw-setting">{}: <strong>{}</strong></span> ', ((name, value) for name, value in shown)
        )

    def get_queryset(self, request):
        return UserAccount.objects.for_user(request.user)


@admin.register(Computer)
class ComputerAdmin(ReadOnlyInventoryMixin, admin.ModelAdmin):
    # The columns that answer "which Macs need me?" first; hardware and identifiers are on the Mac's page.
    list_display = [
        "name_and_serial", "tenant", "compliance", "failed_rule_titles", "registration", "inventory_state_badge",
        "company_portal", "checked_in", "os_version",
    ]
    list_display_links = ["name_and_serial"]
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

    @admin.display(description=_("compliance"), ordering="compliance_status")
    def compliance(self, obj):
        return compliance_badge(obj.compliance_status, obj.get_compliance_status_display())

    @admin.display(description=_("Mac"), ordering="name")
    def name_and_serial(self, obj):
        return format_html('{}<span class="secondary">{}</span>', obj.name or _("(no name)"), obj.serial_number)

    @admin.display(description=_("registration"), ordering="registration_state")
    def registration(self, obj):
        if not obj.registration_state:
            return "-"
        short = REGISTRATION_SHORT.get(obj.registration_state)
        label = obj.get_registration_state_display()
        return badge(short or label, REGISTRATION_TONES.get(obj.registration_state, "quiet"), label if short else "")

    @admin.display(description=_("inventory state"), ordering="inventory_state")
    def inventory_state_badge(self, obj):
        return inventory_state_badge(obj.inventory_state, obj.get_inventory_state_display())

    @admin.display(description=_("last check-in"), ordering="last_check_in")
    def checked_in(self, obj):
        return ago(obj.last_check_in)

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
