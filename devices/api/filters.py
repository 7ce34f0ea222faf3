"""django-filter filtersets for Macs and inventory events. A malformed value is a 400 naming the parameter."""


import django_filters
from django import forms
from django.db.models import Q
from django_filters import fields as filter_fields
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from devices.models import SMART_GROUPS, ComplianceStatus, Computer, InventoryEvent, InventoryState, Registration
from devices.osversion import UnparseableVersion, is_valid_version, parse_version
from devices.rules import CODES
from portal.api.filters import UTCIsoDateTimeField
from portal.models import Tenant

NOT_EVALUATED = "not_evaluated"


def visible_tenants(request):
    """The tenants a filter may name: the caller's (anything else is an invalid choice, a 400)."""
    if request is None:
        return Tenant.objects.none()
    return Tenant.objects.for_user(request.user)


MAX_ID = 2**63 - 1  # BigAutoField


def _check_ids(values, error):
    """IDs must be integers a database can hold: 2**70 is a 400, not an overflow deep in the driver."""
    for value in values:
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise forms.ValidationError(error, code="invalid_pk_value", params={"pk": value}) from None
        if not 0 < number <= MAX_ID:
            raise forms.ValidationError(error, code="invalid_pk_value", params={"pk": value})


class UTCIsoDateTimeRangeField(filter_fields.IsoDateTimeRangeField):
    def __init__(self, *args, **kwargs):
        fields = (UTCIsoDateTimeField(), UTCIsoDateTimeField())
        super(filter_fields.IsoDateTimeRangeField, self).__init__(fields, *args, **kwargs)


class DateTimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` / ``<name>_before`` in ISO 8601, any offset, compared in UTC."""

    field_class = UTCIsoDateTimeRangeField



class IdChoiceField(filter_fields.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values:
            _check_ids([value], self.error_messages["invalid_choice"])
        return super().to_python(value)


class IdMultipleChoiceField(filter_fields.ModelMultipleChoiceField):
    def _check_values(self, value):
        _check_ids(value, self.error_messages["invalid_pk_value"])
        return super()._check_values(value)


class IdChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = IdChoiceField


class IdMultipleChoiceFilter(django_filters.ModelMultipleChoiceFilter):
    field_class = IdMultipleChoiceField


@extend_schema_field(OpenApiTypes.STR)
class TenantSlugFilter(django_filters.ModelMultipleChoiceFilter):
    def __init__(self, **kwargs):
        kwargs.setdefault("field_name", "tenant__slug")  # django-filter compares field_name to the slug
        kwargs.setdefault("to_field_name", "slug")
        kwargs.setdefault("queryset", visible_tenants)
        kwargs.setdefault("help_text", "A tenant's slug (repeat for several).")
        super().__init__(**kwargs)


class NullableMultipleChoiceFilter(django_filters.MultipleChoiceFilter):
    """Choices plus ``not_evaluated`` (a null field)."""

    def filter(self, qs, value):
        if not value:
            return qs
        values = [self.to_db(v) for v in value if v != NOT_EVALUATED]
        condition = Q(**{"%s__in" % self.field_name: values}) if values else Q(pk__in=[])
        if NOT_EVALUATED in value:
            condition |= Q(**{"%s__isnull" % self.field_name: True})
        return qs.filter(condition)

    def to_db(self, value):
        return value


class InventoryStateFilter(NullableMultipleChoiceFilter):
    NAMES = {state.name.lower(): state.value for state in InventoryState}

    def __init__(self, **kwargs):
        choices = [(name, name) for name in self.NAMES] + [(NOT_EVALUATED, NOT_EVALUATED)]
        super().__init__(choices=choices, **kwargs)

    def to_db(self, value):
        return self.NAMES[value]


class OSVersionField(forms.CharField):
    def validate(self, value):
        super().validate(value)
        if value and not is_valid_version(value):
            raise forms.ValidationError("%(value)s is not a macOS version such as 14.7.1.", params={"value": value})


class OSVersionBoundFilter(django_filters.CharFilter):
    """Macs whose macOS version is at least (or at most) the value, compared numerically (14.10 > 14.9).

    Versions are text in the database, so the distinct versions of the filtered Macs are read (a short
    list) and compared here; the Macs are then selected by those versions. One query, whatever the fleet.
    """

    field_class = OSVersionField

    def __init__(self, bound, **kwargs):
        self.bound = bound
        super().__init__(field_name="os_version", **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        limit = parse_version(value)
        keep = []
        for version in qs.order_by().values_list("os_version", flat=True).distinct():
            try:
                parsed = parse_version(version)
            except UnparseableVersion:
                continue
            if (parsed >= limit) if self.bound == "min" else (parsed <= limit):
                keep.append(version)
        return qs.filter(os_version__in=keep)


class ComputerFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    tenant_id = IdMultipleChoiceFilter(
        field_name="tenant", queryset=visible_tenants, help_text="A tenant's ID (repeat for several)."
    )
    state = InventoryStateFilter(field_name="inventory_state", help_text="Inventory state (repeat for several).")
    compliance = NullableMultipleChoiceFilter(
        field_name="compliance_status",
        choices=list(ComplianceStatus.choices) + [(NOT_EVALUATED, "Not evaluated")],
        help_text="Compliance status (repeat for several).",
    )
    registration = NullableMultipleChoiceFilter(
        field_name="registration_state",
        choices=list(Registration.choices) + [(NOT_EVALUATED, "Not evaluated")],
        help_text="Entra registration (repeat for several).",
    )
    failed_rule = django_filters.ChoiceFilter(
        choices=[(code, code) for code in CODES], method="filter_failed_rule",
        help_text="Macs that fail this rule code.",
    )
    smart_group = django_filters.ChoiceFilter(
        choices=list(SMART_GROUPS), method="filter_smart_group",
        help_text="A smart group of the Jamf integration guide.",
    )
    os_version_min = OSVersionBoundFilter("min", help_text="Lowest macOS version, inclusive (e.g. 14.0).")
    os_version_max = OSVersionBoundFilter("max", help_text="Highest macOS version, inclusive (e.g. 14.7.1).")
    company_portal = django_filters.BooleanFilter(
        method="filter_company_portal", help_text="Company Portal installed (true) or not (false)."
    )
    managed = django_filters.BooleanFilter()
    retired = django_filters.BooleanFilter(field_name="retired_at", lookup_expr="isnull", exclude=True)
    last_check_in = DateTimeRangeFilter(
        help_text="Use last_check_in_after / last_check_in_before (ISO 8601)."
    )
    # Exact (case-sensitive) so the indexes serve them: the fast way for scripts to find one Mac.
    serial_number = django_filters.CharFilter()
    udid = django_filters.CharFilter()
    entra_device_id = django_filters.CharFilter()
    jamf_id = django_filters.CharFilter()

    class Meta:
        model = Computer
        fields = []

    def filter_failed_rule(self, queryset, name, value):
        return queryset.failing_rule(value) if value else queryset

    def filter_smart_group(self, queryset, name, value):
        return queryset.smart_group(value) if value else queryset

    def filter_company_portal(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(company_portal_version__isnull=not value)


class InventoryEventFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    source = django_filters.MultipleChoiceFilter(choices=InventoryEvent.Source.choices)
    status = django_filters.MultipleChoiceFilter(choices=InventoryEvent.Status.choices)
    event_type = django_filters.CharFilter()
    received_at = DateTimeRangeFilter(
        help_text="Use received_at_after / received_at_before (ISO 8601)."
    )
    computer = IdChoiceFilter(
        queryset=lambda request: Computer.objects.for_user(request.user) if request else Computer.objects.none(),
        help_text="A computer's ID.",
    )

    class Meta:
        model = InventoryEvent
        fields = []
