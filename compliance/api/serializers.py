"""Serializers for compliance policies and the per-tenant compliance summary."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from compliance.models import CompliancePolicy, ComplianceReport
from portal.api.fields import TenantField
from portal.models import SyncRun


class CompliancePolicySerializer(serializers.ModelSerializer):
    """A tenant's macOS compliance policy. Empty fields are rules that are not configured."""

    url = serializers.HyperlinkedIdentityField(view_name="api:compliance-policy-detail")
    tenant = TenantField()

    class Meta:
        model = CompliancePolicy
        fields = [
            "id", "url", "tenant", "name", "description", "enabled",
            "min_os_version", "max_os_version", "min_os_build", "max_os_build",
            "require_filevault", "require_sip", "gatekeeper", "require_auto_login_disabled",
            "password_min_length", "password_type", "password_min_character_sets", "password_expiration_days",
            "password_history", "screensaver_minutes", "max_inventory_age_days", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        if self.instance is not None and "tenant" in attrs and attrs["tenant"].pk != self.instance.tenant_id:
            raise serializers.ValidationError({"tenant": ["A policy cannot move to another tenant."]})
        tenant = attrs.get("tenant") or getattr(self.instance, "tenant", None)
        name = attrs.get("name", getattr(self.instance, "name", None))
        if tenant is not None and name is not None:
            clash = CompliancePolicy.objects.filter(tenant=tenant, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError({"name": ["This tenant already has a policy with this name."]})
        # The model's own rules (versions that parse, a minimum not above the maximum).
        candidate = CompliancePolicy(
            **{f.attname: getattr(self.instance, f.attname) for f in CompliancePolicy._meta.concrete_fields}
        ) if self.instance is not None else CompliancePolicy()
        for key, value in attrs.items():
            setattr(candidate, key, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        for key in ("min_os_version", "max_os_version", "min_os_build", "max_os_build"):
            if key in attrs:
                attrs[key] = getattr(candidate, key)  # stripped by clean()
        return attrs


class CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()


class InventoryStateCountsSerializer(serializers.Serializer):
    activated = serializers.IntegerField()
    deactivated = serializers.IntegerField()
    unresponsive = serializers.IntegerField()
    not_evaluated = serializers.IntegerField()


class ComplianceCountsSerializer(serializers.Serializer):
    compliant = serializers.IntegerField()
    notCompliant = serializers.IntegerField()  # noqa: N815 - Intune's spelling, as stored
    not_evaluated = serializers.IntegerField()


class RegistrationCountsSerializer(serializers.Serializer):
    registered = serializers.IntegerField()
    not_started = serializers.IntegerField()
    account_not_onboarded = serializers.IntegerField()
    not_evaluated = serializers.IntegerField()


class CompanyPortalCountsSerializer(serializers.Serializer):
    installed = serializers.IntegerField()
    missing = serializers.IntegerField()


class RuleFailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    sentence = serializers.CharField()
    remedy = serializers.CharField()
    count = serializers.IntegerField(help_text="Macs failing this rule.")


class DailyPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    total = serializers.IntegerField()
    compliant = serializers.IntegerField()
    not_compliant = serializers.IntegerField()
    not_evaluated = serializers.IntegerField()
    activated = serializers.IntegerField()
    deactivated = serializers.IntegerField()
    unresponsive = serializers.IntegerField()
    registered = serializers.IntegerField()


class TenantSummarySerializer(serializers.Serializer):
    tenant = serializers.CharField(help_text="The tenant's slug.")
    name = serializers.CharField()
    total = serializers.IntegerField()
    inventory_state = InventoryStateCountsSerializer()
    compliance = ComplianceCountsSerializer()
    registration = RegistrationCountsSerializer()
    company_portal = CompanyPortalCountsSerializer()
    failures_by_rule = RuleFailureSerializer(many=True)
    daily = DailyPointSerializer(many=True, help_text="One point per day with a snapshot, last 90 days.")


class ComplianceSummarySerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    tenants = TenantSummarySerializer(many=True)


class ComplianceReportSerializer(serializers.ModelSerializer):
    """One report to Intune (or a Graph deletion) and Intune's answer: the computer's history."""

    tenant = TenantField(read_only=True)
    # As sent to Intune (0, 1, 2; "compliant", "notCompliant"): the model's choices only label them for the admin.
    inventory_state = serializers.IntegerField(read_only=True, allow_null=True)
    compliance_status = serializers.CharField(read_only=True)

    class Meta:
        model = ComplianceReport
        fields = [
            "id", "tenant", "computer", "user_account", "kind", "reason", "username", "entra_device_id",
            "entra_user_id", "inventory_state", "compliance_status", "payload", "payload_hash", "status", "latest",
            "message_id", "batched_at", "attempts", "next_attempt_at", "error_code", "error_detail",
            "requested_by", "created_at", "sent_at", "finished_at", "updated_at",
        ]
        read_only_fields = fields


class SyncRunSerializer(serializers.ModelSerializer):
    """One background run (evaluate, deliver, Jamf Pro pull, ...) with its counters."""

    tenant = TenantField(read_only=True)

    class Meta:
        model = SyncRun
        fields = ["id", "tenant", "kind", "status", "started_at", "finished_at", "counters", "error"]
        read_only_fields = fields
