"""Tenants (with their actions and the inventory upload), Entra client secrets, and API tokens."""

import importlib
import logging

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.models import get_token_model
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from devices.api.serializers import UploadResultSerializer
from portal import audit, tenancy
from portal.api.audit_filters import AuditEventFilterSet
from portal.api.filters import ClientSecretFilterSet
from portal.api.permissions import MSP_STAFF, SELF
from portal.api.serializers import AuditEventSerializer, ClientSecretSerializer, TenantSerializer, TokenSerializer
from portal.api.viewsets import ScopedGenericViewSet, ScopedModelViewSet, ScopedReadOnlyViewSet
from portal.models import AuditEvent, ClientSecret, Tenant

logger = logging.getLogger(__name__)

NOT_IMPLEMENTED = inline_serializer("NotImplemented", {"detail": serializers.CharField()})


def optional(module_name, attribute):
    """``module.attribute`` when another part of the portal provides it, else None."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, attribute, None)


def not_implemented(detail):
    return Response({"detail": detail}, status=status.HTTP_501_NOT_IMPLEMENTED)


class TenantViewSet(ScopedModelViewSet):
    """Customer tenants. MSP staff create and delete them; a tenant's admins change its configuration."""

    queryset = Tenant.objects.prefetch_related(
        Prefetch("client_secrets", queryset=ClientSecret.objects.order_by("-expires_at"))
    )
    serializer_class = TenantSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    ordering = "name"
    filterset_fields = ["is_active", "cloud", "intune_enabled", "reporting_mode"]

    def get_required_role(self):
        if self.action in ("create", "destroy"):
            return MSP_STAFF
        return super().get_required_role()

    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT, 501: NOT_IMPLEMENTED},
        description="Test the Entra ID / Intune connection now and store the result on the tenant.",
    )
    @action(detail=True, methods=["post"], url_path="test-connection", required_role=tenancy.OPERATOR)
    def test_connection(self, request, slug=None, format=None):
        tenant = self.get_object()
        test = optional("compliance.connection", "test_connection")
        if test is None:
            return not_implemented("Connection tests are not available in this version of the portal yet.")
        result = test(tenant)
        return Response(_plain(result))

    @extend_schema(
        request=None,
        responses={202: OpenApiTypes.OBJECT, 501: NOT_IMPLEMENTED},
        description="Queue a Jamf Pro pull (when the tenant has API credentials), then an evaluation of every Mac "
                    "and a delivery of the reports it calls for to Intune.",
    )
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR)
    def sync(self, request, slug=None, format=None):
        from django_q.tasks import async_task

        tenant = self.get_object()
        if optional("compliance.tasks", "evaluate_and_report_task") is None:
            return not_implemented("On-demand sync is not available in this version of the portal.")
        queued = {}
        if tenant.has_jamf_api and optional("devices.tasks", "pull_tenant") is not None:
            queued["jamf_pull"] = async_task(
                "devices.tasks.pull_tenant", tenant.pk, task_name="pull %s (API)" % tenant.slug, group="jamf-pull"
            )
        queued["evaluate_and_report"] = async_task(
            "compliance.tasks.evaluate_and_report_task", tenant.pk, task_name="evaluate %s (API)" % tenant.slug,
            group="compliance-intune",
        )
        audit.record("sync_now", tenant, details={"jamf_pull": "jamf_pull" in queued})
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            200: inline_serializer("ConsentUrl", {"url": serializers.URLField()}),
            400: OpenApiTypes.OBJECT,
        },
        description="The Entra admin-consent URL for this tenant's application, in the tenant's cloud.",
    )
    @action(detail=True, methods=["get"], url_path="consent-url", required_role=tenancy.ADMIN)
    def consent_url(self, request, slug=None, format=None):
        from compliance.consent import admin_consent_url

        tenant = self.get_object()
        # Design section 6a: https://<login host>/<tenant>/adminconsent?client_id=<app>&state=<signed>
        # &redirect_uri=<portal callback>; the partner app's in partner mode, the tenant's own otherwise.
        url = admin_consent_url(tenant, request.user)
        if not url:
            return Response(
                {"detail": "Set the Entra tenant first (and the partner application, or the tenant's own "
                           "application ID in the legacy mode)."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"url": url})

    @extend_schema(
        request={"application/json": OpenApiTypes.ANY},
        responses={200: UploadResultSerializer, 400: OpenApiTypes.OBJECT,
                   413: OpenApiTypes.OBJECT, 415: OpenApiTypes.OBJECT},
        description=(
            "Upload Jamf Pro computers-inventory records: one record, a list, or a page "
            '({"totalCount", "results": [...]}). The body is stored first; the answer gives each '
            "record's outcome: created, updated, unchanged, stale (older than what is stored) or "
            "rejected with the reason."
        ),
    )
    # JSONParser declares what the upload takes (the browsable API's form needs a parser); the handler never
    # touches request.data but streams the body itself, within API_INVENTORY_MAX_BYTES.
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR, parser_classes=[JSONParser])
    def inventory(self, request, slug=None, format=None):
        from devices.api.upload import handle_upload

        tenant = self.get_object()
        return handle_upload(request, tenant)


def _plain(value):
    """A JSON-able form of what a connection test or a queued sync returns."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    return {"result": str(value)}


class ClientSecretViewSet(ScopedModelViewSet):
    """Entra application client secrets. The value is write-only; several may be valid during a rotation."""

    queryset = ClientSecret.objects.select_related("tenant")
    serializer_class = ClientSecretSerializer
    ordering = "-id"
    filterset_class = ClientSecretFilterSet
    read_role = tenancy.ADMIN  # even the existence of secrets is configuration


class TokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    ScopedGenericViewSet,
):
    """Your own API tokens: create one (shown once, in the answer), list them, revoke one.

    Tokens are stored hashed (django-rest-knox) and expire. Send one as ``Authorization: Token <token>``.
    """

    queryset = get_token_model().objects.all()
    serializer_class = TokenSerializer
    lookup_value_regex = r"[0-9a-f]{128}"
    ordering = "-created"
    read_role = write_role = SELF
    filter_backends = []

    def scope_queryset(self, queryset, user):
        return queryset.filter(user=user)

    def perform_create(self, serializer):
        serializer.save()

    def perform_destroy(self, instance):
        instance.delete()


class AuditEventViewSet(ScopedReadOnlyViewSet):
    """The audit trail of the tenants you administer (MSP staff: every entry), newest first. Read-only.

    Every change people and API tokens make to the configuration, and every action they run (retire,
    re-send, delete from Entra ID and Intune, sync, provision, test connection, webhook secret), with who,
    when, from which address and what; secrets only as set / rotated, never their values.
    """

    queryset = AuditEvent.objects.select_related("tenant", "content_type")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering = "-id"
    read_role = tenancy.ADMIN

    def scope_queryset(self, queryset, user):
        # Entries of a tenant the caller sees answer 403 unless they administer it; others 404. A list holds
        # only the tenants the caller administers (the same role as the detail).
        queryset = super().scope_queryset(queryset, user)
        return queryset.for_user(user, tenancy.ADMIN) if self.action == "list" else queryset
