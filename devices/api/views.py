"""Macs (list, detail) and the inventory events they came from (read-only).

The Intune actions on a Mac (retire, resend, history) are added by ``compliance.api.views.ComputerViewSet``,
which the API router serves: devices never imports compliance (docs/architecture.md).
"""

from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters

from devices.api.filters import ComputerFilterSet, InventoryEventFilterSet
from devices.api.serializers import (
    ComputerListSerializer,
    ComputerSerializer,
    InventoryEventDetailSerializer,
    InventoryEventSerializer,
)
from devices.models import Computer, InventoryEvent, UserAccount
from portal.api.viewsets import ScopedReadOnlyViewSet

LIST_COLUMNS = [
    name for name in ComputerListSerializer.Meta.fields
    if name not in ("url", "tenant", "inventory_state_code", "has_company_portal", "user_accounts")
]


class ComputerSearch(filters.SearchFilter):
    """``?search=`` matches the name or serial number (contains), or the UDID or Entra device ID (exact)."""

    search_description = "Name or serial number (contains), UDID or Entra device ID (exact)."


class ComputerViewSet(ScopedReadOnlyViewSet):
    """Macs of the tenants you may see, with their users and their evaluated state (list and detail)."""

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
