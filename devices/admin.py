"""Admin for Macs, their user accounts and the raw inventory events (all read-only: Jamf Pro owns them)."""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from devices.models import Computer, InventoryEvent, UserAccount
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


class RegistrationFilter(admin.SimpleListFilter):
    title = _("Entra registration")
    parameter_name = "registered"

    def lookups(self, request, model_admin):
        return [("yes", _("Registered")), ("no", _("Not registered"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(entra_device_id="")
        if self.value() == "no":
            return queryset.filter(entra_device_id="")
        return queryset


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
        "username", "full_name", "email", "entra_state", "entra_user_id", "entra_device_id", "password_min_length",
        "password_type", "password_min_complex_characters", "password_max_age_days", "password_history_depth",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return UserAccount.objects.for_user(request.user)


@admin.register(Computer)
class ComputerAdmin(ReadOnlyInventoryMixin, admin.ModelAdmin):
    list_display = [
        "name", "serial_number", "tenant", "model", "os_version", "last_check_in", "filevault_state", "sip",
        "company_portal", "registered",
    ]
    list_filter = [
        ("tenant", ScopedTenantFilter), "managed", "filevault_state", "sip", "gatekeeper", CompanyPortalFilter,
        RegistrationFilter, "architecture", "os_name",
    ]
    search_fields = ["serial_number", "name", "udid", "entra_device_id", "jamf_id"]
    list_select_related = ["tenant"]
    list_per_page = 100
    show_full_result_count = False
    date_hierarchy = None
    inlines = [UserAccountInline]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "jamf_id", "udid", "serial_number", "managed", "retired_at"]}),
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

    @admin.display(description=_("registered"), boolean=True)
    def registered(self, obj):
        return bool(obj.entra_device_id)

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
    list_display = ["received_at", "tenant", "source", "event_type", "status", "computer"]
    list_filter = [("tenant", ScopedTenantFilter), "source", "event_type", "status"]
    list_select_related = ["tenant", "computer"]
    search_fields = ["error"]
    show_full_result_count = False
    readonly_fields = [
        "tenant", "source", "event_type", "received_at", "event_timestamp", "status", "error", "processed_at",
        "computer", "raw_body",
    ]
    fields = readonly_fields
