"""The audit trail's filterset (apart from portal/api/filters.py, which devices.api.filters imports)."""

import django_filters

from devices.api.filters import DateTimeRangeFilter, TenantSlugFilter
from portal import audit
from portal.models import AuditEvent

EVENTS = [(name, name) for name in ("create", "update", "delete", *audit.ACTIONS)]


class AuditEventFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    actor = django_filters.CharFilter(field_name="actor_username", help_text="The person's username.")
    api_token = django_filters.CharFilter(field_name="api_token_key", help_text="An API token's key (prefix).")
    event = django_filters.MultipleChoiceFilter(choices=EVENTS, help_text="What happened (repeat for several).")
    timestamp = DateTimeRangeFilter(help_text="timestamp_after / timestamp_before (ISO 8601).")

    class Meta:
        model = AuditEvent
        fields = []
