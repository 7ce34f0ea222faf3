"""The API's URLs: one router for every app's viewsets under /api/v1/, the schema and its docs.

Every endpoint is a viewset on this router, so the authorization matrix test (tests/api) can walk
them all: a new endpoint cannot escape it.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import routers
from rest_framework.routers import DefaultRouter

from compliance.api.views import (
    CompliancePolicyViewSet,
    ComplianceReportViewSet,
    ComputerViewSet,
    ReportViewSet,
    SyncRunViewSet,
)
from devices.api.views import InventoryEventViewSet
from portal.api.permissions import IsAuthenticatedUser
from portal.api.views import AuditEventViewSet, ClientSecretViewSet, TenantViewSet, TokenViewSet


class APIRootView(routers.APIRootView):
    """The list of endpoints: any signed-in user (it shows no tenant data)."""

    permission_classes = [IsAuthenticatedUser]


class Router(DefaultRouter):
    """The API root lists the report URLs too (their viewset has no list route)."""

    APIRootView = APIRootView

    def get_api_root_view(self, api_urls=None):
        view = super().get_api_root_view(api_urls)
        view.initkwargs["api_root_dict"]["reports/compliance"] = "report-compliance"
        return view


router = Router()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("client-secrets", ClientSecretViewSet, basename="client-secret")
router.register("computers", ComputerViewSet, basename="computer")
router.register("inventory-events", InventoryEventViewSet, basename="inventory-event")
router.register("compliance-policies", CompliancePolicyViewSet, basename="compliance-policy")
router.register("compliance-reports", ComplianceReportViewSet, basename="compliance-report")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("reports", ReportViewSet, basename="report")
router.register("tokens", TokenViewSet, basename="token")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

app_name = "api"
urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
