"""Macs (list, detail, retire, resend) and the inventory events they came from (read-only)."""

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import filters, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from devices.api.filters import ComputerFilterSet, InventoryEventFilterSet
from devices.api.serializers import (
    ComputerListSerializer,
    ComputerSerializer,
    InventoryEventDetailSerializer,
    InventoryEventSerializer,
)
from devices.api.upload import queue_evaluation
from devices.models import Computer, InventoryEvent, InventoryState, UserAccount
from portal import tenancy
from portal.api.pagination import CursorPagination
from portal.api.views import NOT_IMPLEMENTED, not_implemented, optional
from portal.api.viewsets import ScopedReadOnlyViewSet

LIST_COLUMNS = [
    name for name in ComputerListSerializer.Meta.fields
    if name not in ("url", "tenant", "inventory_state_code", "has_company_portal", "user_accounts")
]


class ComputerSearch(filters.SearchFilter):
    """``?search=`` matches the name or serial number (contains), or the UDID or Entra device ID (exact)."""

    search_description = "Name or serial number (contains), UDID or Entra device ID (exact)."


def _history_page_schema():
    from compliance.api.serializers import ComplianceReportSerializer

    return inline_serializer("PaginatedComputerHistory", {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": ComplianceReportSerializer(many=True),
    })


class ComputerViewSet(ScopedReadOnlyViewSet):
    """Macs of the tenants you may see, with their users and their evaluated state."""

    queryset = Computer.objects.select_related("tenant")
    serializer_class = ComputerSerializer
    filterset_class = ComputerFilterSet
    search_fields = ["name", "serial_number", "=udid", "=entra_device_id"]
    ordering = "id"

    filter_backends = [DjangoFilterBackend, ComputerSearch]

    def get_serializer_class(self):
        return ComputerListSerializer if self.action == "list" else ComputerSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            # Load only the columns a list shows: on a large fleet this is most of a page's cost. The
            # page's user accounts come in one flat query (ComputerPageSerializer), not a prefetch.
            return queryset.only("tenant__slug", *LIST_COLUMNS)
        return queryset.prefetch_related(
            Prefetch("user_accounts", queryset=UserAccount.objects.order_by("username"))
        )

    @extend_schema(request=None, responses={200: ComputerSerializer})
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR)
    def retire(self, request, pk=None):
        """Retire the Mac: no longer managed, so it is reported to Intune as deactivated (state 1)."""
        computer = self.get_object()
        sync_retire = optional("compliance.sync", "retire")
        if sync_retire is not None:
            sync_retire(computer.tenant_id, [computer.pk], requested_by=request.user.get_username())
            _queue_delivery(computer.tenant_id)
        else:
            with transaction.atomic():
                locked = Computer.objects.select_for_update().get(pk=computer.pk)
                locked.retired_at = locked.retired_at or timezone.now()
                locked.managed = False
                locked.inventory_state = InventoryState.DEACTIVATED
                locked.save(update_fields=["retired_at", "managed", "inventory_state", "updated_at"])
                queue_evaluation(locked.tenant_id, [locked.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=computer.pk)).data)

    @extend_schema(responses=_history_page_schema(), parameters=[
        OpenApiParameter("cursor", OpenApiTypes.STR, description="The pagination cursor (from next / previous)."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="Rows per page (capped)."),
    ])
    @action(detail=True, methods=["get"], required_role=tenancy.VIEWER, filter_backends=[])
    def history(self, request, pk=None):
        """What was sent to Intune for this Mac (per user) and Intune's answer, newest first."""
        from compliance.api.serializers import ComplianceReportSerializer
        from compliance.models import ComplianceReport

        computer = self.get_object()
        reports = ComplianceReport.objects.filter(computer_id=computer.pk).select_related("tenant")
        paginator = CursorPagination(ordering="-id")
        page = paginator.paginate_queryset(reports, request, view=self)
        data = ComplianceReportSerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT, 501: NOT_IMPLEMENTED})
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR)
    def resend(self, request, pk=None):
        """Send the Mac's current state to Intune again: a fresh report per registered user, delivered soon."""
        computer = self.get_object()
        sync_resend = optional("compliance.sync", "resend")
        if sync_resend is None:
            return not_implemented("Resending to Intune needs the report outbox, which this version does not have.")
        result = sync_resend(computer.tenant_id, [computer.pk], requested_by=request.user.get_username())
        _queue_delivery(computer.tenant_id)
        counters = getattr(result, "counters", None)
        return Response({"queued": counters if isinstance(counters, dict) else {}}, status=status.HTTP_202_ACCEPTED)


def _queue_delivery(tenant_id):
    queue = optional("compliance.tasks", "queue_deliver")
    if queue is not None:
        transaction.on_commit(lambda: queue(tenant_id))


class InventoryEventViewSet(ScopedReadOnlyViewSet):
    """Bodies received from Jamf Pro (webhooks, pulls, uploads), newest first. The detail has the raw body."""

    queryset = InventoryEvent.objects.select_related("tenant").defer("raw_body")
    serializer_class = InventoryEventSerializer
    filterset_class = InventoryEventFilterSet
    ordering = "-id"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.defer(None)
        return queryset

    def get_serializer_class(self):
        return InventoryEventDetailSerializer if self.action == "retrieve" else InventoryEventSerializer
