"""The buttons of the tenant's admin page, in one object-tools area (issue 8, item 5).

Test connection (``compliance/connection_admin.py``), Sync now, Provision, Deprovision, the admin-consent
link, the Jamf webhook set-up (``devices/tenant_admin.py``) and the landing-page previews
(``portal/landing.py``). Every button that changes something opens a confirmation page (GET) whose form
POSTs back with the CSRF token; the work runs in the background (django-q2) and shows under the tenant's
background runs. Roles (``portal/tenancy.py``): a viewer sees the page and the previews, an operator
tests and syncs, an admin provisions, deprovisions, grants consent and rotates the webhook secret.
Another tenant's page answers 404, as the connection test does.
"""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal import audit, tenancy
from portal.models import LandingPage, Tenant

# The landing-page kinds of portal.landing.PREVIEWS, and which one a tenant's choice shows.
PREVIEW_KINDS = [
    ("registration", gettext_lazy("Device registration")),
    ("registration-enrolled", gettext_lazy("Device registration, enrolled Mac first")),
    ("access-denied", gettext_lazy("Access denied")),
    ("remediation", gettext_lazy("Remediation")),
]
CHOICE_PREVIEW = {LandingPage.REGISTRATION: "registration", LandingPage.ACCESS_DENIED: "access-denied"}


@dataclass(frozen=True)
class Tool:
    """One button of the object tools: a link, to a confirmation page for the ones that change something."""

    key: str
    label: str
    url: str
    title: str = ""
    external: bool = False
    post: bool = False  # a button that POSTs at once (with the CSRF token): the one-click actions
    tone: str = ""  # "primary" for the everyday buttons


def preview_url(tenant, kind):
    return reverse("landing-preview", args=[tenant.slug, kind])


def _configured(tenant):
    return tenant.connection_configured


class TenantToolsAdminMixin:
    """The tenant page's buttons and the views behind them. Mixed into ``portal.admin.TenantAdmin`` first."""

    change_form_template = "admin/portal/tenant/change_form.html"

    def _url_name(self, name):
        return "%s_%s_%s" % (self.opts.app_label, self.opts.model_name, name)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/sync-now/", view(self.sync_now_view), name=self._url_name("sync_now")),
            path("<path:object_id>/provision/", view(self.provision_view), name=self._url_name("provision")),
            path("<path:object_id>/deprovision/", view(self.deprovision_view), name=self._url_name("deprovision")),
            path("<path:object_id>/jamf-webhooks/", view(self.jamf_webhooks_view),
                 name=self._url_name("jamf_webhooks")),
            *super().get_urls(),
        ]

    # -- the buttons -------------------------------------------------------------------------

    def tenant_tools(self, request, tenant):
        """The buttons ``request.user`` may use on ``tenant``'s page, in their order."""
        from compliance.connection import admin_consent_url

        role = tenancy.role_for(request.user, tenant.pk)
        rank = tenancy.ROLE_RANK.get(role, 0)
        operator = rank >= tenancy.ROLE_RANK[tenancy.OPERATOR]
        is_admin = rank >= tenancy.ROLE_RANK[tenancy.ADMIN]

        def url(name):
            return reverse("admin:" + self._url_name(name), args=[tenant.pk])

        tools = []
        if operator:
            tools.append(Tool("test_connection", _("Test connection"), url("test_connection"),
                              _("Check the Entra ID and Intune connection step by step, now."), post=True,
                              tone="primary"))
            tools.append(Tool("sync_now", _("Sync now"), url("sync_now"),
                              _("Pull from Jamf Pro, evaluate every Mac and deliver the reports to Intune."),
                              tone="primary"))
        if is_admin and _configured(tenant):
            tools.append(Tool("provision", _("Provision"), url("provision"),
                              _("Register this portal with the tenant's Intune as its compliance partner.")))
            tools.append(Tool("deprovision", _("Deprovision"), url("deprovision"),
                              _("Stop reporting to Intune; the configuration stays.")))
            consent = admin_consent_url(tenant, request.user)
            if consent:
                tools.append(Tool("consent", _("Grant admin consent"), consent, _(
                    "A Global Administrator of the customer opens this to grant the app its permissions."),
                    external=True))
        tools.append(Tool("jamf_webhooks", _("Jamf webhooks"), url("jamf_webhooks"),
                          _("The webhook URL, how to set it up in Jamf Pro, and its secret.")))
        if tenant.landing_page == LandingPage.CUSTOM:
            if tenant.landing_custom_url:
                tools.append(Tool("preview", _("Landing page"), tenant.landing_custom_url,
                                  _("The tenant's own page, where its landing URL redirects."), external=True))
        else:
            tools.append(Tool("preview", _("Preview landing page"),
                              preview_url(tenant, CHOICE_PREVIEW.get(tenant.landing_page, "registration")),
                              _("The page end users see when Entra ID does not recognise their Mac."),
                              external=True))
        return tools

    @admin.display(description=gettext_lazy("previews"))
    def landing_previews(self, obj):
        """Links to every landing-page kind of the tenant, and the URLs registered with Intune."""
        if obj is None or not obj.pk:
            return _("Save the tenant first.")
        from portal.landing import landing_urls

        registered = landing_urls(obj)
        links = format_html_join(
            " · ", '<a href="{}" target="_blank" rel="noopener">{}</a>',
            ((preview_url(obj, kind), label) for kind, label in PREVIEW_KINDS),
        )
        return format_html(
            "<p>{}</p><p class=\"help\">{} <code>{}</code><br>{} <code>{}</code></p>",
            links, _("Enrollment URL registered with Intune:"), registered["enrollment"],
            _("Remediation URL:"), registered["remediation"],
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["tenant_tools"] = self.tenant_tools(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- the views ---------------------------------------------------------------------------

    def _tenant_for(self, request, object_id, role):
        tenant = self.get_object(request, unquote(object_id))  # scoped: another tenant's ID is a 404
        if tenant is None:
            raise Http404(_("No such tenant."))
        if not tenancy.has_role(request.user, tenant.pk, role):
            raise PermissionDenied
        return tenant

    def _change_url(self, tenant):
        return reverse("admin:%s_%s_change" % (self.opts.app_label, self.opts.model_name), args=[tenant.pk])

    def _runs_link(self, tenant):
        url = "%s?%s" % (reverse("admin:portal_syncrun_changelist"), urlencode({"tenant__id__exact": tenant.pk}))
        return format_html('<a href="{}">{}</a>', url, _("Background runs"))

    def _confirm_or_perform(self, request, object_id, role, title, question, details, perform):
        """GET: the confirmation page. POST (with the CSRF token the admin checks): ``perform``, then the tenant."""
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        tenant = self._tenant_for(request, object_id, role)
        if request.method == "POST":
            perform(request, tenant)
            return HttpResponseRedirect(self._change_url(tenant))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": tenant,
            "title": title % {"tenant": tenant.name},
            "question": question(tenant) if callable(question) else question,
            "details": details(tenant) if callable(details) else details,
            "change_url": self._change_url(tenant),
            "submit_label": title % {"tenant": tenant.name},
        }
        return TemplateResponse(request, "admin/portal/tenant/confirm_tool.html", context)

    def sync_now_view(self, request, object_id):
        def details(tenant):
            steps = []
            if tenant.has_jamf_api:
                steps.append(_("Pull the Macs changed since the last pull from Jamf Pro (%(url)s).") % {
                    "url": tenant.jamf_url})
            else:
                steps.append(_("No Jamf Pro API credentials: nothing is pulled; the Macs stored are evaluated."))
            steps.append(_("Evaluate every Mac against the tenant's compliance policies."))
            if tenant.intune_enabled and tenant.is_active:
                steps.append(_("Deliver the reports that calls for, and those waiting, to Intune."))
            else:
                steps.append(_("The Intune integration is off: nothing is sent to Intune."))
            return steps

        def perform(request, tenant):
            from compliance.tasks import queue_sync_now

            queue_sync_now(tenant.pk)
            audit.record("sync_now", tenant, details={"jamf_pull": tenant.has_jamf_api})
            self.log_change(request, tenant, "Sync now")
            self.message_user(request, format_html(
                "{} {}", _("Sync of %(tenant)s queued.") % {"tenant": tenant.name}, self._runs_link(tenant)),
                messages.SUCCESS)

        return self._confirm_or_perform(
            request, object_id, tenancy.OPERATOR, _("Sync %(tenant)s now"),
            _("Run a sync of this tenant in the background now:"), details, perform,
        )

    def provision_view(self, request, object_id):
        def question(tenant):
            if tenant.intune_enabled:
                return _("The Intune integration is enabled. Provision the tenant in Intune again (safe to repeat)?")
            return _("Enable the Intune integration and provision the tenant in Intune?")

        def details(tenant):
            from portal.landing import landing_urls

            urls = landing_urls(tenant)
            return [
                _("Intune: this portal becomes the tenant's partner for macOS compliance (PartnerTenants, "
                  "Provisioned 1)."),
                _("Enrollment URL: %(url)s") % {"url": urls["enrollment"]},
                _("Remediation URL: %(url)s") % {"url": urls["remediation"]},
                _("The partner compliance policy is created if missing and assigned to the configured groups."),
                _("From then on the Macs' state is reported to Intune."),
            ]

        def perform(request, tenant):
            if not _configured(tenant):
                self.message_user(request, _(
                    "Set the Entra tenant first (and the partner application, or the tenant's own app in the legacy "
                    "mode)."), messages.ERROR)
                return
            if not tenant.is_active:
                self.message_user(request, _("The tenant is inactive: activate it first."), messages.ERROR)
                return
            self._set_intune_enabled(tenant, True)
            audit.record("provision", tenant)
            self.log_change(request, tenant, "Provision in Intune")
            self.message_user(request, format_html(
                "{} {}", _("Provisioning of %(tenant)s queued.") % {"tenant": tenant.name}, self._runs_link(tenant)),
                messages.SUCCESS)

        return self._confirm_or_perform(
            request, object_id, tenancy.ADMIN, _("Provision %(tenant)s"), question, details, perform,
        )

    def deprovision_view(self, request, object_id):
        def details(tenant):
            return [
                _("Intune: the tenant is deprovisioned (PartnerTenants, Provisioned 2)."),
                _("Reports not sent yet are cancelled; no new ones are sent."),
                _("The configuration (secrets, policies, landing page) stays: Provision enables it again."),
                _("Under conditional access, Macs may become non-compliant when their last report expires."),
            ]

        def perform(request, tenant):
            if not _configured(tenant):
                self.message_user(request, _("The tenant is not connected to Entra ID: nothing to deprovision."),
                                  messages.ERROR)
                return
            self._set_intune_enabled(tenant, False)
            audit.record("deprovision", tenant)
            self.log_change(request, tenant, "Deprovision in Intune")
            self.message_user(request, format_html(
                "{} {}", _("Deprovisioning of %(tenant)s queued.") % {"tenant": tenant.name},
                self._runs_link(tenant)), messages.WARNING)

        return self._confirm_or_perform(
            request, object_id, tenancy.ADMIN, _("Deprovision %(tenant)s"),
            _("Disable the Intune integration and deprovision the tenant in Intune?"), details, perform,
        )

    @staticmethod
    def _set_intune_enabled(tenant, enabled):
        """Switch the integration; the post_save signal (compliance/signals.py) queues the provisioning task.

        When the flag is already as asked, the task is queued directly: provisioning is safe to repeat.
        """
        from compliance.tasks import provision_task_queue

        if tenant.intune_enabled != enabled:
            tenant.intune_enabled = enabled
            tenant.save(update_fields=["intune_enabled", "updated_at"])
        else:
            provision_task_queue(tenant.pk)

    def jamf_webhooks_view(self, request, object_id):
        """The webhook set-up; an admin generates a new secret here (shown once, in the message after the POST)."""
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        tenant = self._tenant_for(request, object_id, tenancy.VIEWER)
        may_rotate = tenancy.has_role(request.user, tenant.pk, tenancy.ADMIN)
        if request.method == "POST":
            if not may_rotate:
                raise PermissionDenied
            self.rotate_webhook_secret(request, Tenant.objects.filter(pk=tenant.pk))
            self.log_change(request, tenant, "New Jamf webhook secret")
            return HttpResponseRedirect(reverse("admin:" + self._url_name("jamf_webhooks"), args=[tenant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": tenant,
            "title": _("Jamf Pro webhooks: %(tenant)s") % {"tenant": tenant.name},
            "setup": self.jamf_webhook_setup(tenant),
            "may_rotate": may_rotate,
            "has_secret": bool(tenant.webhook_secret),
            "change_url": self._change_url(tenant),
        }
        return TemplateResponse(request, "admin/portal/tenant/jamf_webhooks.html", context)
