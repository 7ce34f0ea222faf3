"""The tenant admin's connection features: Test connection (on save, as an action, as a button), the
admin-consent button, and the client-secret expiry banner. Mixed into ``portal.admin.TenantAdmin``."""

import datetime

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance import connection
from portal import tenancy

MAX_BANNERS = 10


def tenants_needing_a_secret(queryset, now=None, warn_days=None):
    """Configured tenants of ``queryset`` whose last valid secret is missing or expires within ``warn_days``."""
    from django.conf import settings

    now = now or timezone.now()
    warn_days = warn_days or max(settings.SECRET_EXPIRY_WARNING_DAYS)
    return (
        queryset.with_own_app()
        .annotate(
            last_valid=Max("client_secrets__expires_at", filter=Q(client_secrets__expires_at__gt=now)),
            secret_count=Count("client_secrets"),
        )
        .filter(Q(last_valid__isnull=True) | Q(last_valid__lt=now + datetime.timedelta(days=warn_days)))
        .prefetch_related("client_secrets")
    )


class ConnectionTestAdminMixin:
    """Adds Test connection (save, action, button), the consent button and the secret banner to TenantAdmin."""

    change_form_template = "admin/portal/tenant/change_form_connection.html"
    actions = ["test_connection_action"]

    # -- permissions -------------------------------------------------------------------------

    def has_test_connection_permission(self, request, obj=None):
        if obj is not None:
            return tenancy.has_role(request.user, obj.pk, tenancy.OPERATOR)
        return tenancy.has_any_membership(request.user, tenancy.OPERATOR)

    # -- the test ----------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="%s_%s_test_connection" % info,
            ),
            *super().get_urls(),
        ]

    def test_connection_view(self, request, object_id):
        tenant = self.get_object(request, unquote(object_id))  # scoped: another tenant's ID is a 404
        if tenant is None:
            raise Http404
        if not self.has_test_connection_permission(request, tenant):
            raise PermissionDenied
        if request.method == "POST":
            return self._results_page(request, [(tenant, connection.test_connection(tenant))])
        return self._results_page(request, [(tenant, None)])

    @admin.action(description=gettext_lazy("Test connection to Entra ID and Intune"), permissions=["test_connection"])
    def test_connection_action(self, request, queryset):
        from portal.models import Tenant

        allowed = queryset.filter(pk__in=Tenant.objects.for_user(request.user, tenancy.OPERATOR).values("pk"))
        results = [(tenant, connection.test_connection(tenant)) for tenant in allowed.order_by("name")]
        if not results:
            self.message_user(request, _("You may not test the connection of these tenants."), messages.ERROR)
            return None
        return self._results_page(request, results)

    def _results_page(self, request, results):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            # One tenant's test (its page's button) sits under that tenant in the breadcrumbs.
            "original": results[0][0] if len(results) == 1 else None,
            "title": _("Connection test"),
            "results": [
                {
                    "tenant": tenant,
                    "result": result,
                    "change_url": reverse("admin:%s_%s_change" % (self.opts.app_label, self.opts.model_name),
                                          args=[tenant.pk]),
                    "test_url": reverse("admin:%s_%s_test_connection" % (self.opts.app_label, self.opts.model_name),
                                        args=[tenant.pk]),
                    "consent_url": connection.admin_consent_url(tenant, request.user)
                    if tenancy.has_role(request.user, tenant.pk, tenancy.ADMIN) else "",
                }
                for tenant, result in results
            ],
        }
        return TemplateResponse(request, "admin/portal/tenant/test_connection.html", context)

    def save_related(self, request, form, formsets, change):
        """As Jamf Pro does: saving changed connection settings (or secrets) tests them at once."""
        super().save_related(request, form, formsets, change)
        tenant = form.instance
        secrets_changed = any(
            formset.has_changed() for formset in formsets if formset.model._meta.model_name == "clientsecret"
        )
        settings_changed = bool(set(form.changed_data) & set(connection.CONNECTION_FIELDS))
        if not (settings_changed or secrets_changed) or not tenant.connection_configured:
            return
        if not tenant.uses_own_app and tenant.consent_granted_at is None:
            # Partner mode before consent: Entra would only answer "application not found in this tenant".
            self.message_user(request, _(
                "Next: Grant admin consent (a Global Administrator of the customer opens the link), then Test "
                "connection."), messages.INFO)
            return
        self._message_result(request, connection.test_connection(tenant))

    def _message_result(self, request, result):
        if result.ok:
            self.message_user(
                request,
                _("Connection test passed: %(steps)s.") % {"steps": ", ".join(s.name for s in result.steps)},
                messages.SUCCESS,
            )
            return
        step = result.failed_step
        self.message_user(
            request,
            format_html(
                "{} <strong>{}</strong>: {} {} {}",
                _("Connection test failed at"),
                step.name,
                step.message,
                _("What to do:"),
                step.advice,
            ),
            messages.ERROR,
        )

    # -- the page ------------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("onboarding"))
    def onboarding(self, obj):
        """Where the tenant stands: which application, admin consent, and Intune's view of the partner."""
        if obj is None or not obj.pk:
            return _("Save the tenant first; then Grant admin consent, Test connection and Provision.")
        from portal.partner import partner_application

        rows = []
        if obj.uses_own_app:
            why = _("legacy inventory mode") if obj.reporting_mode == "inventory" else _("override")
            rows.append((_("Application"), _("the tenant's own app %(app)s (%(why)s)") % {
                "app": obj.client_id or "-", "why": why}))
        else:
            partner = partner_application()
            rows.append((_("Application"), _("the partner application %(name)s (%(app)s)") % {
                "name": partner.display_name, "app": partner.client_id} if partner else
                _("none: a superuser or MSP admin sets up the partner application first")))
        if obj.consent_granted_at:
            consent = _("granted %(when)s") % {"when": obj.consent_granted_at.strftime("%Y-%m-%d %H:%M UTC")}
            if obj.consent_granted_by:
                consent += " " + _("(link issued by %(user)s)") % {"user": obj.consent_granted_by}
        else:
            consent = _("not recorded yet: use Grant admin consent (a Global Administrator of the customer opens it)")
        rows.append((_("Admin consent"), consent))
        summary = obj.intune_partner or {}
        if obj.reporting_mode == "inventory":
            intune = _("not used by the legacy inventory mode")
        elif "found" not in summary:
            intune = _("not read yet: Test connection reads it")
        elif not summary["found"]:
            intune = _("this partner is not added in Intune (Partner compliance management)")
        else:
            intune = _("%(state)s; macOS %(mac)s; %(groups)d group(s); last heartbeat %(beat)s") % {
                "state": summary.get("state", "?"),
                "mac": _("onboarded") if summary.get("macos_onboarded") else _("not onboarded"),
                "groups": len(summary.get("groups") or []), "beat": summary.get("last_heartbeat") or "-"}
        rows.append((_("Intune partner"), intune))
        return format_html(
            '<dl class="tenant-onboarding">{}</dl><p class="help">{}</p>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows),
            _("Steps: Grant admin consent › Test connection › Provision (docs/connect-a-tenant.md, part 2)."),
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            info = self.opts.app_label, self.opts.model_name
            context["admin_consent_url"] = (connection.admin_consent_url(obj, request.user)
                                            if tenancy.has_role(request.user, obj.pk, tenancy.ADMIN) else "")
            context["can_test_connection"] = self.has_test_connection_permission(request, obj)
            context["test_connection_url"] = reverse("admin:%s_%s_test_connection" % info, args=[obj.pk])
            if request.method == "GET":
                warning = connection.secret_warning(obj)
                if warning:
                    messages.warning(request, warning)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            tenants = list(tenants_needing_a_secret(self.get_queryset(request))[: MAX_BANNERS + 1])
            for tenant in tenants[:MAX_BANNERS]:
                warning = connection.secret_warning(tenant)
                if warning:
                    messages.warning(request, warning)
            if len(tenants) > MAX_BANNERS:
                messages.warning(request, _("More tenants need a new client secret soon."))
            if tenancy.is_msp_staff(request.user):
                warning = connection.partner_credential_warning()
                if warning:
                    messages.warning(request, warning)
        return super().changelist_view(request, extra_context)
