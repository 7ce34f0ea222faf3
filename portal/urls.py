"""URL configuration: the admin, health check, and (as they land) webhooks, landing pages and the API."""

from django.contrib import admin
from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView

from compliance.views import consent_callback
from devices import webhooks
from portal import dashboard, landing
from signin import views as signin_views


class FaviconRedirect(RedirectView):
    """/favicon.ico, which browsers ask for on pages without an icon link, to the static icon (resolved per request:
    the hashed name exists only after collectstatic)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("portal/favicon.svg")


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    # A home at / (the admin's "View site" leads here) and the icon browsers ask for at /favicon.ico.
    path("", TemplateView.as_view(template_name="portal/home.html"), name="home"),
    path("favicon.ico", FaviconRedirect.as_view()),
    # One sign-in flow (signin/, allauth): the admin's login leads to it, so nothing gets around MFA.
    path("admin/login/", signin_views.admin_login, name="admin-login"),
    *[path("accounts/%s" % page, signin_views.not_offered) for page in signin_views.NOT_OFFERED],
    path("accounts/", include("allauth.urls")),
    # The admin index is the tenant dashboard (portal/dashboard.py); the rest of the admin is Django's.
    path("admin/", admin.site.admin_view(dashboard.admin_index), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Entra ID's admin-consent redirect (compliance/consent.py); registered as the partner app's redirect URI.
    path("consent/callback/", consent_callback, name="entra-consent-callback"),
    # REST API (portal/api/urls.py): /api/v1/..., /api/schema/, /api/docs/; session login for the browsable API.
    path("api/", include("portal.api.urls")),
    path("api/auth/", include("signin.api_urls")),
    # Jamf Pro webhooks, one URL per tenant (devices/webhooks.py).
    path("hooks/jamf/<slug:slug>/", webhooks.jamf_webhook, name="jamf-webhook"),
    path("hooks/jamf/<slug:slug>", webhooks.jamf_webhook),  # a POST is never redirected to add the slash
    # End-user landing pages: registered with Intune as enrollment / remediation URLs, keep them stable.
    path("r/<slug:slug>/", landing.landing, name="landing"),
    path("r/<slug:slug>/remediation/", landing.remediation, name="landing-remediation"),
    path("r/<slug:slug>/preview/<slug:kind>/", landing.preview, name="landing-preview"),
]
