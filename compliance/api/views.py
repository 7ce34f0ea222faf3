"""Compliance policies (CRUD), the compliance report (a per-tenant summary, or the Macs as streamed CSV), and the
Intune actions on a Mac (retire, resend, history)."""

import csv

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from compliance import reports, sync
from compliance.api.filters import CompliancePolicyFilterSet, ComplianceReportFilterSet, SyncRunFilterSet
from compliance.api.renderers import CSVRenderer
from compliance.api.serializers import (
    CompliancePolicySerializer,
    ComplianceReportSerializer,
    ComplianceSummarySerializer,
    SyncRunSerializer,
)
from compliance.models import CompliancePolicy, ComplianceReport
from compliance.tasks import queue_deliver
from devices.api import views as devices_views
from devices.api.filters import ComputerFilterSet
from devices.api.serializers import INVENTORY_STATE_NAMES, ComputerSerializer
from devices.api.views import ComputerSearch
from devices.models import Computer
from devices.rules import describe, get_rule
from portal import tenancy
from portal.api.pagination import CursorPagination
from portal.api.viewsets import ScopedGenericViewSet, ScopedModelViewSet, ScopedReadOnlyViewSet
from portal.models import SyncRun, Tenant


class CompliancePolicyViewSet(ScopedModelViewSet):
    """A tenant's macOS compliance policies. Every enabled policy applies to every Mac of its tenant."""

    queryset = CompliancePolicy.objects.select_related("tenant")
    serializer_class = CompliancePolicySerializer
    filterset_class = CompliancePolicyFilterSet
    ordering = "id"


class ComplianceReportViewSet(ScopedReadOnlyViewSet):
    """What was sent to Intune for each Mac and user, and Intune's answer, newest first (the history)."""

    queryset = ComplianceReport.objects.select_related("tenant")
    serializer_class = ComplianceReportSerializer
    filterset_class = ComplianceReportFilterSet
    ordering = "-id"


class SyncRunViewSet(ScopedReadOnlyViewSet):
    """Background runs (evaluate, deliver, Jamf Pro pulls, ...) with their counters, newest first."""

    queryset = SyncRun.objects.select_related("tenant")
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilterSet
    ordering = "-id"


CSV_COLUMNS = [
    ("tenant", "tenant__slug"), ("jamf_id", "jamf_id"), ("name", "name"), ("serial_number", "serial_number"),
    ("udid", "udid"), ("entra_device_id", "entra_device_id"), ("os_version", "os_version"),
    ("last_check_in", "last_check_in"), ("inventory_state", "inventory_state"),
    ("compliance_status", "compliance_status"), ("registration_state", "registration_state"),
    ("company_portal_version", "company_portal_version"), ("failed_rules", "failed_rules"),
]


def _cell(value):
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


def stream_csv(queryset):
    """Yield the CSV of ``queryset``'s Macs, row by row (server-side cursor: constant memory)."""
    writer = csv.writer(_Echo())
    reasons = {}  # tuple of codes -> (codes text, sentences text)
    yield writer.writerow([name for name, _ in CSV_COLUMNS] + ["reasons"])
    fields = [field for _, field in CSV_COLUMNS]
    for row in queryset.order_by("tenant_id", "id").values_list(*fields).iterator(chunk_size=2000):
        row = list(row)
        row[8] = INVENTORY_STATE_NAMES.get(row[8], "")
        row[7] = row[7].isoformat() if row[7] else ""
        key = tuple(row[12] or ())
        if key not in reasons:
            rules = describe(key)
            reasons[key] = (";".join(r.code for r in rules), " | ".join(str(r.sentence) for r in rules))
        row[12], sentences = reasons[key]
        yield writer.writerow([_cell(v) for v in row] + [_cell(sentences)])


class ReportViewSet(ScopedGenericViewSet):
    """The compliance report of the tenants you may see."""

    queryset = Computer.objects.all()
    filterset_class = ComputerFilterSet
    filter_backends = [DjangoFilterBackend, ComputerSearch]
    search_fields = ["name", "serial_number", "=udid", "=entra_device_id"]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    pagination_class = None

    @extend_schema(
        operation_id="reports_compliance",
        parameters=[
            OpenApiParameter("tenant", OpenApiTypes.STR, many=True, description="Only these tenants (slugs)."),
        ],
        responses={
            (200, "application/json"): ComplianceSummarySerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="As reports/compliance.csv (or Accept: text/csv): one row per Mac with its compliance "
                            "and the reasons; the computers filters apply.",
            ),
        },
    )
    @action(detail=False, methods=["get"], url_path="compliance", required_role=tenancy.VIEWER)
    def compliance(self, request, format=None):
        """Per tenant: counts by inventory state, compliance and registration, failures per rule, a 90-day series.

        Ask for ``reports/compliance.csv`` to get the Macs themselves as CSV, streamed.
        """
        if request.accepted_renderer.format == "csv":
            return self._csv(request)
        tenants = self._tenants(request)
        ids = [t.pk for t in tenants]
        counts = reports.tenant_counts(ids, with_rules=True)
        series = reports.daily_series(ids)
        body = {"generated_at": timezone.now(), "tenants": [
            self._tenant_summary(t, counts[t.pk], counts[t.pk]["failures"], series[t.pk]) for t in tenants
        ]}
        return Response(ComplianceSummarySerializer(body).data)

    def _tenants(self, request):
        visible = Tenant.objects.for_user(request.user).order_by("name")
        slugs = request.query_params.getlist("tenant")
        if not slugs:
            return list(visible.only("pk", "slug", "name"))
        found = list(visible.filter(slug__in=slugs).only("pk", "slug", "name"))
        missing = sorted(set(slugs) - {t.slug for t in found})
        if missing:
            raise exceptions.ValidationError({"tenant": ["No tenant %s that you may see." % ", ".join(missing)]})
        return found

    @staticmethod
    def _tenant_summary(tenant, c, failures, series):
        rules = sorted(failures.items(), key=lambda item: (-item[1], item[0]))
        return {
            "tenant": tenant.slug,
            "name": tenant.name,
            "total": c["total"],
            "inventory_state": {
                "activated": c["activated"], "deactivated": c["deactivated"], "unresponsive": c["unresponsive"],
                "not_evaluated": c["state_not_evaluated"],
            },
            "compliance": {
                "compliant": c["compliant"], "notCompliant": c["not_compliant"],
                "not_evaluated": c["compliance_not_evaluated"],
            },
            "registration": {
                "registered": c["registered"], "not_started": c["not_started"],
                "account_not_onboarded": c["account_not_onboarded"], "not_evaluated": c["registration_not_evaluated"],
            },
            "company_portal": {"installed": c["company_portal"], "missing": c["total"] - c["company_portal"]},
            "failures_by_rule": [
                {"code": code, "title": str(rule.title), "sentence": str(rule.sentence), "remedy": str(rule.remedy),
                 "count": count}
                for code, count in rules
                for rule in [get_rule(code)]
            ],
            "daily": series,
        }

    def _csv(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(stream_csv(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="compliance-%s.csv"' % timezone.now().date()
        response["Cache-Control"] = "no-store"
        return response



def _history_page_schema():
    return inline_serializer("PaginatedComputerHistory", {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": ComplianceReportSerializer(many=True),
    })


class ComputerViewSet(devices_views.ComputerViewSet):
    """Macs of the tenants you may see, with their users and their evaluated state; retire, re-send and the
    history of what was sent to Intune. (The list and detail come from devices; the Intune actions are here.)"""

    @extend_schema(request=None, responses={200: ComputerSerializer})
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR)
    def retire(self, request, pk=None, format=None):
        """Retire the Mac: no longer managed, so it is reported to Intune as deactivated (state 1)."""
        computer = self.get_object()
        sync.retire(computer.tenant_id, [computer.pk], requested_by=request.user.get_username())
        _queue_delivery(computer.tenant_id)
        return Response(self.get_serializer(self.get_queryset().get(pk=computer.pk)).data)

    @extend_schema(responses=_history_page_schema(), parameters=[
        OpenApiParameter("cursor", OpenApiTypes.STR, description="The pagination cursor (from next / previous)."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="Rows per page (capped)."),
    ])
    @action(detail=True, methods=["get"], required_role=tenancy.VIEWER, filter_backends=[])
    def history(self, request, pk=None, format=None):
        """What was sent to Intune for this Mac (per user) and Intune's answer, newest first."""
        computer = self.get_object()
        reports = ComplianceReport.objects.filter(computer_id=computer.pk).select_related("tenant")
        paginator = CursorPagination(ordering="-id")
        page = paginator.paginate_queryset(reports, request, view=self)
        data = ComplianceReportSerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], required_role=tenancy.OPERATOR)
    def resend(self, request, pk=None, format=None):
        """Send the Mac's current state to Intune again: a fresh report per registered user, delivered soon."""
        computer = self.get_object()
        result = sync.resend(computer.tenant_id, [computer.pk], requested_by=request.user.get_username())
        _queue_delivery(computer.tenant_id)
        return Response({"queued": result.counters}, status=status.HTTP_202_ACCEPTED)


def _queue_delivery(tenant_id):
    transaction.on_commit(lambda: queue_deliver(tenant_id))
