"""URL configuration: the admin, health check, and (as they land) webhooks, landing pages and the API."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from devices import webhooks
from portal import dashboard, landing
from portal.login_throttle import throttled_login


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    # The admin index is the tenant dashboard (portal/dashboard.py); the rest of the admin is Django's.
    path("admin/login/", throttled_login, name="admin-login-throttled"),
    path("admin/", admin.site.admin_view(dashboard.admin_index), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # REST API (portal/api/urls.py): /api/v1/..., /api/schema/, /api/docs/; session login for the browsable API.
    path("api/", include("portal.api.urls")),
    path("api/auth/", include("rest_framework.urls")),
    # Jamf Pro webhooks, one URL per tenant (devices/webhooks.py).
    path("hooks/jamf/<slug:slug>/", webhooks.jamf_webhook, name="jamf-webhook"),
    path("hooks/jamf/<slug:slug>", webhooks.jamf_webhook),  # a POST is never redirected to add the slash
    # End-user landing pages: registered with Intune as enrollment / remediation URLs, keep them stable.
    path("r/<slug:slug>/", landing.landing, name="landing"),
    path("r/<slug:slug>/remediation/", landing.remediation, name="landing-remediation"),
    path("r/<slug:slug>/preview/<slug:kind>/", landing.preview, name="landing-preview"),
]
