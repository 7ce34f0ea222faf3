"""django-filter filtersets for compliance policies."""

import django_filters

from compliance.models import CompliancePolicy, ComplianceReport
from devices.api.filters import DateTimeRangeFilter, IdChoiceFilter, TenantSlugFilter
from devices.models import Computer
from portal.models import SyncRun


class CompliancePolicyFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    enabled = django_filters.BooleanFilter()
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = CompliancePolicy
        fields = []


class ComplianceReportFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    computer = IdChoiceFilter(
        queryset=lambda request: Computer.objects.for_user(request.user) if request else Computer.objects.none(),
        help_text="A computer's ID.",
    )
    status = django_filters.MultipleChoiceFilter(choices=ComplianceReport.Status.choices)
    kind = django_filters.MultipleChoiceFilter(choices=ComplianceReport.Kind.choices)
    reason = django_filters.MultipleChoiceFilter(choices=ComplianceReport.Reason.choices)
    latest = django_filters.BooleanFilter()
    created_at = DateTimeRangeFilter(help_text="created_at_after / created_at_before.")

    class Meta:
        model = ComplianceReport
        fields = []


class SyncRunFilterSet(django_filters.FilterSet):
    tenant = TenantSlugFilter()
    kind = django_filters.MultipleChoiceFilter(choices=SyncRun.Kind.choices)
    status = django_filters.MultipleChoiceFilter(choices=SyncRun.Status.choices)
    started_at = DateTimeRangeFilter(help_text="started_at_after / started_at_before.")

    class Meta:
        model = SyncRun
        fields = []
