"""Admin for tenants, their client secrets and memberships, plus the tenant-scoping admin base."""

import contextlib
import json
import re

from auditlog.mixins import LogEntryAdminMixin
from auditlog.render import render_logentry_changes_html
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from compliance.connection_admin import ConnectionTestAdminMixin
from devices.tenant_admin import JamfTenantAdminMixin
from portal import audit, tenancy
from portal.admin_format import badge, short_datetime
from portal.models import AuditEvent, ClientSecret, Membership, PartnerApplication, Tenant
from portal.partner_admin import PartnerApplicationAdmin
from portal.tenant_tools import TenantToolsAdminMixin

admin.site.site_header = _("Mac compliance portal")
admin.site.site_title = _("Mac compliance portal")
admin.site.index_title = _("Tenants, Macs and compliance")
# The everyday pages are a row under the header (admin/base_site.html): the lists get the sidebar's 300 px.
admin.site.enable_nav_sidebar = False


class TenantScopedAdminMixin:
    """Scope an admin (or inline) to the tenants the user may see, through ``portal.tenancy``.

    ``change_role`` is the least role that may add, change and delete; None makes it read-only
    for everyone but MSP staff.
    """

    change_role = tenancy.ADMIN
    #: The least role that may see the rows at all.
    view_role = tenancy.VIEWER

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user, self.view_role)

    def get_list_display(self, request):
        """A user who sees one tenant does not need a tenant column: the room goes to the other columns."""
        columns = list(super().get_list_display(request))
        if "tenant" in columns and sees_one_tenant(request):
            columns.remove("tenant")
        return columns

    def changelist_view(self, request, extra_context=None):
        refused = refused_tenant_filter(request)
        if refused:
            # Never list "as if filtered": say the filter was refused, and show what the user may see.
            messages.warning(request, _(
                "You may not see the tenant this list was filtered by (%(lookup)s=%(value)s): the filter was removed, "
                "and the list shows the tenants you may see.") % {"lookup": refused[0], "value": refused[1]})
            query = request.GET.copy()
            query.pop(refused[0])
            return HttpResponseRedirect("%s?%s" % (request.path, query.urlencode()) if query else request.path)
        return super().changelist_view(request, extra_context)

    def _may(self, request, obj, role):
        if tenancy.is_msp_staff(request.user):
            return True
        if role is None or not request.user.is_active:
            return False
        if obj is None:
            # Asked once per model admin on every page (the app list, the nav sidebar): once per request.
            known = request.__dict__.setdefault("_portal_any_membership", {})
            if role not in known:
                known[role] = tenancy.has_any_membership(request.user, role)
            return known[role]
        return tenancy.has_role(request.user, tenancy.tenant_id_of(obj), role)

    def has_module_permission(self, request):
        return self._may(request, None, self.view_role)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj, self.view_role)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj, self.change_role)

    def has_add_permission(self, request, *args):
        obj = args[0] if args else None  # inlines pass the parent object
        return self._may(request, obj, self.change_role)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj, self.change_role)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = Tenant.objects.for_user(request.user, self.change_role or tenancy.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


TENANT_LOOKUP_RE = re.compile(r"^tenant(?:_id|__id|__pk)?(?:__exact|__in)?$")


def refused_tenant_filter(request):
    """(parameter, value) of a tenant filter in the query string naming a tenant the user may not see, else None.

    An unknown tenant and another customer's tenant get the same answer, so the message tells nothing about
    which tenants exist. MSP staff see every tenant: for them an unknown ID simply lists nothing.
    """
    if tenancy.is_msp_staff(request.user):
        return None  # every tenant is theirs; an unknown ID simply lists nothing
    allowed = None
    for key, values in request.GET.lists():
        if not TENANT_LOOKUP_RE.match(key):
            continue
        for value in values:
            ids = value.split(",") if key.endswith("__in") else [value]
            if allowed is None:
                allowed = set(map(str, Tenant.objects.for_user(request.user).values_list("pk", flat=True)))
            if any(pk.strip() not in allowed for pk in ids):
                return key, value
    return None


def sees_one_tenant(request):
    """True when the user may see exactly one tenant (asked once per request)."""
    if "_portal_one_tenant" not in request.__dict__:
        request._portal_one_tenant = (
            not tenancy.is_msp_staff(request.user) and Tenant.objects.for_user(request.user).count() == 1
        )
    return request._portal_one_tenant


class ScopedTenantFilter(admin.RelatedFieldListFilter):
    """The tenant filter lists only the tenants the user may see."""

    def field_choices(self, field, request, model_admin):
        return [(t.pk, t.name) for t in Tenant.objects.for_user(request.user).only("pk", "name")]


class WriteOnlySecretWidget(forms.PasswordInput):
    def __init__(self, is_set=False, **kwargs):
        attrs = {"autocomplete": "new-password"}
        if is_set:
            attrs["placeholder"] = str(_("set (leave blank to keep)"))
        super().__init__(attrs=attrs, render_value=False)


class ClientSecretForm(forms.ModelForm):
    """The secret's value is write-only: entered once, never shown back."""

    class Meta:
        model = ClientSecret
        fields = ["value", "description", "expires_at"]
        widgets = {"value": WriteOnlySecretWidget()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["value"].required = False
            self.fields["value"].widget = WriteOnlySecretWidget(is_set=True)
            self.initial["value"] = ""

    def clean_value(self):
        value = (self.cleaned_data.get("value") or "").strip()
        if not value and self.instance.pk:
            return ClientSecret.objects.get(pk=self.instance.pk).value
        if not value:
            raise forms.ValidationError(_("Enter the secret's Value, as shown once in Entra ID."))
        return value


class ClientSecretInline(TenantScopedAdminMixin, admin.TabularInline):
    model = ClientSecret
    form = ClientSecretForm
    extra = 0
    verbose_name_plural = _("client secrets of the tenant's own app (legacy inventory mode or an override only)")
    fields = ["value", "description", "expires_at", "state"]
    readonly_fields = ["state"]
    view_role = tenancy.ADMIN  # even which secrets exist is configuration (as in the API)

    @admin.display(description=_("state"))
    def state(self, obj):
        if not obj.pk:
            return "-"
        verb = _("expired on") if obj.is_expired else _("expires on")
        return "%s, %s %s" % (_("set"), verb, obj.expires_at.date().isoformat())

    def get_queryset(self, request):
        return ClientSecret.objects.for_user(request.user, self.view_role)


class GroupIdListField(forms.Field):
    """Entra group object IDs, one per line (commas and spaces also separate them), stored as a JSON list."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "guid-list", "spellcheck": "false",
                                   "placeholder": "00000000-0000-0000-0000-000000000000"})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value or ""

    def to_python(self, value):
        if isinstance(value, str) and value.strip().startswith("["):
            with contextlib.suppress(ValueError):  # a JSON list, as the old JSON box took it
                value = json.loads(value)
        if isinstance(value, (list, tuple)):
            return [str(item).strip() for item in value if str(item).strip()]
        return [item for item in re.split(r"[\s,;\[\]\"']+", value or "") if item]

    def validate(self, value):
        super().validate(value)
        from portal.models import GUID_RE

        wrong = [item for item in value if not GUID_RE.match(item)]
        if wrong:
            raise forms.ValidationError(
                _("Not an Entra group object ID (a GUID): %(values)s. Copy the Object ID from Entra ID › Groups."),
                params={"values": ", ".join(wrong)},
            )

    def has_changed(self, initial, data):
        return self.to_python(initial or []) != self.to_python(data)


class TenantForm(forms.ModelForm):
    jamf_client_secret = forms.CharField(
        label=_("Jamf Pro API client secret"), required=False, widget=WriteOnlySecretWidget()
    )
    partner_policy_group_ids = GroupIdListField(
        label=_("Partner policy group IDs"), required=False,
        help_text=_("The Entra groups (object IDs, one per line) the partner compliance policy is assigned to. "
                    "Empty: the policy is created but assigned to nobody."),
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "jamf_client_secret"]  # the admin's fieldsets add the rest
        widgets = {
            # Wide enough for a whole GUID, in a font that tells 0 from O.
            "client_id": forms.TextInput(attrs={"class": "guid-input", "spellcheck": "false", "size": 38}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["jamf_client_secret"] = ""
        if self.instance.pk and self.instance.jamf_client_secret:
            self.fields["jamf_client_secret"].widget = WriteOnlySecretWidget(is_set=True)
            self.fields["jamf_client_secret"].help_text = _("Set. Leave blank to keep it.")

    def clean_jamf_client_secret(self):
        value = (self.cleaned_data.get("jamf_client_secret") or "").strip()
        if not value and self.instance.pk:
            return Tenant.objects.get(pk=self.instance.pk).jamf_client_secret
        return value


@admin.register(Tenant)
class TenantAdmin(
    TenantToolsAdminMixin, ConnectionTestAdminMixin, JamfTenantAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin
):
    form = TenantForm
    list_display = ["name", "slug", "connection", "intune", "reporting", "cloud", "is_active"]
    list_filter = ["is_active", "cloud", "intune_enabled", "reporting_mode"]
    search_fields = ["name", "slug", "entra_tenant"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "entra_tenant_id", "last_test", "created_at", "jamf_webhook_setup",
        "intune_health", "landing_previews", "onboarding",
    ]
    inlines = [ClientSecretInline]
    actions = [*ConnectionTestAdminMixin.actions, *JamfTenantAdminMixin.actions]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        (
            _("Microsoft Entra ID and Intune"),
            {
                "fields": [
                    "cloud", "entra_tenant", "entra_tenant_id", "reporting_mode", "intune_enabled",
                    "partner_policy_group_ids", "onboarding",
                ]
            },
        ),
        (
            _("Own app registration (legacy inventory mode, or an override of the partner app)"),
            {
                "classes": ["collapse"],
                "fields": ["use_own_app", "client_id"],
                "description": _(
                    "Partner mode needs nothing here: the customer consents to the MSP's partner application. "
                    "The legacy inventory mode (the retired Partner device management connector) and a customer "
                    "who insists on its own registration use this app and the client secrets below."
                ),
            },
        ),
        (
            _("Landing page for Macs Entra ID does not recognise"),
            {
                "fields": [
                    "landing_page", "landing_custom_url", "jamf_enrollment_url", "self_service_registration_url",
                    "support_contact", "logo_url", "landing_previews",
                ]
            },
        ),
        (
            _("Rules"),
            {
                "fields": [
                    "unresponsive_after_hours", "compliance_validity_days", "no_policy_compliant",
                    "account_not_onboarded_days",
                ]
            },
        ),
        (
            _("Jamf Pro"),
            {
                "fields": [
                    "jamf_url", "jamf_client_id", "jamf_client_secret", "jamf_api_version", "webhook_username",
                    "jamf_webhook_setup",
                ]
            },
        ),
        (_("Last connection test"), {"fields": ["last_test"]}),
        (_("Reports to Intune"), {"fields": ["intune_health"]}),
    ]

    @admin.display(description=_("delivery health"))
    def intune_health(self, obj):
        """Last successful delivery, pending and failed reports, oldest pending age (compliance/report_admin.py)."""
        from compliance.report_admin import health_html

        return health_html(obj) if obj.pk else "-"

    @admin.display(description=_("connection"), ordering="last_test_ok")
    def connection(self, obj):
        """The last connection test in a word, when it ran on hover."""
        when = short_datetime(obj.last_test_at)
        if obj.last_test_ok is None:
            return badge(_("Never tested"), "quiet")
        if obj.last_test_ok:
            return badge(_("Connected"), "ok", _("Last test passed %(when)s") % {"when": when})
        return badge(_("Test failed"), "bad", _("Last test failed %(when)s") % {"when": when})

    @admin.display(description=_("result"))
    def last_test(self, obj):
        """The last connection test: passed or failed in a word, when, and what it said."""
        if obj is None or obj.last_test_ok is None:
            return badge(_("Never tested"), "quiet")
        state = badge(_("Passed"), "ok") if obj.last_test_ok else badge(_("Failed"), "bad")
        return format_html('{} <span class="help">{}</span><pre class="test-message">{}</pre>', state,
                           short_datetime(obj.last_test_at), obj.last_test_message or "")

    @admin.display(description=_("Intune"), ordering="intune_enabled")
    def intune(self, obj):
        return badge(_("Enabled"), "ok") if obj.intune_enabled else badge(_("Off"), "quiet")

    @admin.display(description=_("reporting mode"), ordering="reporting_mode")
    def reporting(self, obj):
        label = str(obj.get_reporting_mode_display())
        return format_html('<span title="{}">{}</span>', label, label.split(" (")[0])

    RULE_FIELDS = {"unresponsive_after_hours", "compliance_validity_days", "no_policy_compliant",
                   "account_not_onboarded_days"}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and self.RULE_FIELDS & set(form.changed_data):
            # The tenant's rules decide every Mac's state and compliance: re-evaluate them, once committed.
            from django.db import transaction

            from compliance.tasks import queue_evaluate_tenant

            transaction.on_commit(lambda: queue_evaluate_tenant(obj.pk))

    #: The slug is in every URL registered with Intune and Jamf Pro, and the active flag switches the tenant
    #: off: only MSP staff change them.
    MSP_STAFF_FIELDS = ["slug", "is_active"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not tenancy.is_msp_staff(request.user):
            fields += [name for name in self.MSP_STAFF_FIELDS if name not in fields]
        return fields

    def get_prepopulated_fields(self, request, obj=None):
        return super().get_prepopulated_fields(request, obj) if tenancy.is_msp_staff(request.user) else {}

    def has_add_permission(self, request):
        return tenancy.is_msp_staff(request.user)

    def has_delete_permission(self, request, obj=None):
        return tenancy.is_msp_staff(request.user)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = [("tenant", ScopedTenantFilter), "role"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    autocomplete_fields = []

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "tenant")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not tenancy.is_msp_staff(request.user):
            # A customer admin may only pick people already in one of their tenants.
            tenant_ids = tenancy.tenant_ids_for_user(request.user, tenancy.ADMIN)
            kwargs["queryset"] = get_user_model().objects.filter(memberships__tenant_id__in=tenant_ids).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AuditTenantFilter(admin.SimpleListFilter):
    """The audit trail's tenant filter: the tenants whose trail the user may read (admin role)."""

    title = _("tenant")
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return [(t.pk, t.name) for t in Tenant.objects.for_user(request.user, tenancy.ADMIN).only("pk", "name")]

    def queryset(self, request, queryset):
        return queryset.filter(tenant_id=self.value()) if self.value() else queryset


class AuditEventAdmin(LogEntryAdminMixin, admin.ModelAdmin):
    """The audit trail, read-only: customer admins read their tenants' entries, MSP staff every entry."""

    date_hierarchy = "timestamp"
    list_display = ["timestamp", "tenant_name", "who", "event", "resource", "msg_short", "remote_addr"]
    list_filter = [AuditTenantFilter, "event", "action"]
    search_fields = ["object_repr", "actor_username", "api_token_key", "remote_addr"]
    list_select_related = ["content_type", "tenant"]
    show_full_result_count = False
    list_per_page = 100
    fields = ["timestamp", "tenant_name", "who", "api_token_key", "remote_addr", "event", "resource", "what"]
    readonly_fields = fields

    def get_queryset(self, request):
        self.request = request  # LogEntryAdminMixin's links use it
        return super().get_queryset(request).for_user(request.user, tenancy.ADMIN)

    def _reader(self, request):
        # The same once-per-request memo as TenantScopedAdminMixin: every admin page asks this for its nav.
        return TenantScopedAdminMixin._may(self, request, None, tenancy.ADMIN)

    def has_module_permission(self, request):
        return self._reader(request)

    def has_view_permission(self, request, obj=None):
        if obj is None or tenancy.is_msp_staff(request.user):
            return self._reader(request)
        return obj.tenant_id is not None and tenancy.has_role(request.user, obj.tenant_id, tenancy.ADMIN)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the daily prune (AUDIT_RETENTION_DAYS) is the only way entries go

    @admin.display(description=_("tenant"), ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name if obj.tenant_id and obj.tenant else ("#%s" % obj.tenant_id if obj.tenant_id else "-")

    @admin.display(description=_("who"))
    def who(self, obj):
        name = obj.actor_username or _("system")
        return "%s (API token %s)" % (name, obj.api_token_key) if obj.api_token_key else name

    @admin.display(description=_("object"))
    def resource(self, obj):
        return "%s: %s" % (obj.content_type.name, obj.object_repr)

    @admin.display(description=_("what"))
    def what(self, obj):
        details = json.dumps(obj.additional_data, indent=2, sort_keys=True) if obj.additional_data else ""
        return format_html(
            "<p>{}</p>{}{}", audit.ACTIONS.get(obj.event, obj.get_action_display()),
            render_logentry_changes_html(obj) if obj.changes else "",  # auditlog escapes the values
            format_html("<pre>{}</pre>", details) if details else "",
        )


if admin.site.is_registered(AuditEvent):  # auditlog's own admin registers the swapped-in model
    admin.site.unregister(AuditEvent)
admin.site.register(AuditEvent, AuditEventAdmin)


admin.site.register(PartnerApplication, PartnerApplicationAdmin)


# API tokens: portal/api/admin.py replaces knox's token admin (knox comes before portal in INSTALLED_APPS).
from portal.api.admin import register as _register_token_admin  # noqa: E402

_register_token_admin()
