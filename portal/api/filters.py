"""Filters the whole API shares: ISO 8601 date-times compared in UTC, and the client secrets' filterset."""

import datetime

import django_filters
from django import forms
from django_filters import fields as filter_fields

from portal.models import ClientSecret


class UTCIsoDateTimeField(filter_fields.IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC before it reaches the database.

    PostgreSQL refuses offsets beyond its range (schemathesis sent "0007-04-26T17:03:19-19:45"), and a
    conversion can overflow at the ends of the calendar: both are the client's error, a 400.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            value = value.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a date-time within the calendar's range.", code="invalid") from None
        if not 1 <= value.year <= 9999:
            raise forms.ValidationError("Enter a date-time within the calendar's range.", code="invalid")
        return value


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class ClientSecretFilterSet(django_filters.FilterSet):
    """``tenant__slug``, and ``expires_at__gte`` / ``expires_at__lte`` in ISO 8601, any offset, compared in UTC."""

    tenant__slug = django_filters.CharFilter(field_name="tenant__slug")
    expires_at__gte = UTCIsoDateTimeFilter(field_name="expires_at", lookup_expr="gte")
    expires_at__lte = UTCIsoDateTimeFilter(field_name="expires_at", lookup_expr="lte")

    class Meta:
        model = ClientSecret
        fields = []
