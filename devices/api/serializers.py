"""Serializers for Macs, their user accounts and inventory events."""

import functools

from django.urls import reverse
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.models import Computer, InventoryEvent, InventoryState, UserAccount
from devices.rules import describe
from portal.api.fields import TenantField

INVENTORY_STATE_NAMES = {state.value: state.name.lower() for state in InventoryState}


class FailedRuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    sentence = serializers.CharField()
    remedy = serializers.CharField()


@extend_schema_field(FailedRuleSerializer(many=True))
class FailedRulesField(serializers.Field):
    """Stored rule codes, each with its sentence for people and the Jamf Pro remedy (devices.rules)."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return [dict(entry) for entry in _described(tuple(value or ()), get_language())]


@functools.lru_cache(maxsize=1024)
def _described(codes, language):
    """The rules behind a tuple of codes, in one language (a fleet shares few combinations)."""
    return tuple(
        {"code": rule.code, "title": str(rule.title), "sentence": str(rule.sentence), "remedy": str(rule.remedy)}
        for rule in describe(codes)
    )


@extend_schema_field(serializers.ChoiceField(choices=list(INVENTORY_STATE_NAMES.values()), allow_null=True))
class InventoryStateField(serializers.Field):
    """0/1/2 as activated / deactivated / unresponsive (null: not evaluated yet)."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return INVENTORY_STATE_NAMES.get(value)


class UserAccountSummarySerializer(serializers.ModelSerializer):
    """A user account as lists show it: its Entra registration and compliance."""

    failed_rules = FailedRulesField()
    is_registered = serializers.BooleanField(read_only=True)

    class Meta:
        model = UserAccount
        fields = [
            "id", "username", "email", "entra_user_id", "entra_device_id", "entra_state", "is_registered",
            "registration_state", "compliance_status", "failed_rules",
        ]
        read_only_fields = fields


class UserAccountSerializer(serializers.ModelSerializer):
    failed_rules = FailedRulesField()
    is_registered = serializers.BooleanField(read_only=True)

    class Meta:
        model = UserAccount
        fields = [
            "id", "username", "full_name", "email", "account_type", "is_admin", "entra_user_id", "entra_device_id",
            "entra_state", "is_registered", "registration_state", "compliance_status", "failed_rules",
            "evaluated_at", "password_min_length", "password_type", "password_min_complex_characters",
            "password_max_age_days", "password_history_depth", "screensaver_idle_minutes",
        ]
        read_only_fields = fields


class ComputerSerializer(serializers.ModelSerializer):
    """A Mac with its users, its inventory state, Entra registration and compliance (with the failed rules)."""

    url = serializers.HyperlinkedIdentityField(view_name="api:computer-detail")
    tenant = TenantField(read_only=True)
    inventory_state = InventoryStateField()
    inventory_state_code = serializers.IntegerField(source="inventory_state", read_only=True, allow_null=True)
    failed_rules = FailedRulesField()
    has_company_portal = serializers.BooleanField(read_only=True)
    user_accounts = UserAccountSerializer(many=True, read_only=True)

    class Meta:
        model = Computer
        fields = [
            "id", "url", "tenant", "jamf_id", "udid", "serial_number", "name",
            "inventory_state", "inventory_state_code", "compliance_status", "registration_state", "failed_rules",
            "evaluated_at", "managed", "retired_at", "last_check_in", "last_inventory_update", "last_enrolled",
            "entra_device_id", "company_portal_version", "has_company_portal", "company_portal_seen_at",
            "os_name", "os_version", "os_build", "platform", "ad_status",
            "make", "model", "model_identifier", "architecture", "processor_type", "processor_speed_mhz",
            "processor_count", "core_count", "total_ram_mb", "open_ram_slots", "battery_capacity_percent",
            "boot_rom", "bus_speed_mhz", "cache_size_kb", "smc_version", "mac_address", "alt_mac_address",
            "nic_speed", "user_email", "username", "filevault_state", "filevault2_status", "gatekeeper", "sip",
            "auto_login_disabled", "user_accounts", "created_at", "updated_at",
        ]
        read_only_fields = fields


USER_SUMMARY_COLUMNS = (
    "id", "computer_id", "username", "email", "entra_user_id", "entra_device_id", "entra_state",
    "registration_state", "compliance_status", "failed_rules",
)


class ComputerPageSerializer(serializers.ListSerializer):
    """A page of computers: their user accounts in one flat query, grouped here.

    Django's prefetch builds a related queryset per computer, which cost a third of a list request.
    """

    def to_representation(self, data):
        computers = list(data.all() if hasattr(data, "all") else data)
        users = {}
        for row in (
            UserAccount.objects.filter(computer_id__in=[c.pk for c in computers])
            .order_by("computer_id", "username")
            .values(*USER_SUMMARY_COLUMNS)
        ):
            users.setdefault(row["computer_id"], []).append(row)
        for computer in computers:
            computer._list_users = users.get(computer.pk, [])
        return [self.child.to_representation(computer) for computer in computers]


class ComputerListSerializer(ComputerSerializer):
    """A Mac as lists show it: identity, state, compliance with the failed rules, and its users.

    The detail adds the hardware, security and OS attributes (lists stay fast on large fleets).
    ``to_representation`` builds the dict directly: the declared fields still describe it (schema,
    browsable API) and a test holds it equal to DRF's field-by-field output, which cost half of a
    list request's time at 100 Macs a page.
    """

    user_accounts = UserAccountSummarySerializer(many=True, read_only=True)

    class Meta(ComputerSerializer.Meta):
        fields = [
            "id", "url", "tenant", "jamf_id", "udid", "serial_number", "name",
            "inventory_state", "inventory_state_code", "compliance_status", "registration_state", "failed_rules",
            "evaluated_at", "managed", "retired_at", "last_check_in", "last_inventory_update",
            "entra_device_id", "company_portal_version", "has_company_portal", "os_version", "os_build", "model",
            "user_email", "user_accounts",
        ]
        read_only_fields = fields
        list_serializer_class = ComputerPageSerializer

    def _detail_url(self, pk):
        template = self.context.get("_computer_url_template")
        if template is None:
            path = reverse("api:computer-detail", kwargs={"pk": 2**62})
            request = self.context.get("request")
            template = (request.build_absolute_uri(path) if request else path).replace(str(2**62), "{}")
            self.context["_computer_url_template"] = template
        return template.format(pk)

    def to_representation(self, computer):
        language = get_language()
        users = getattr(computer, "_list_users", None)
        if users is None:  # one computer on its own: read its users the ordinary way
            users = list(computer.user_accounts.order_by("username").values(*USER_SUMMARY_COLUMNS))
        return {
            "id": computer.pk,
            "url": self._detail_url(computer.pk),
            "tenant": computer.tenant.slug,
            "jamf_id": computer.jamf_id,
            "udid": computer.udid,
            "serial_number": computer.serial_number,
            "name": computer.name,
            "inventory_state": INVENTORY_STATE_NAMES.get(computer.inventory_state),
            "inventory_state_code": computer.inventory_state,
            "compliance_status": computer.compliance_status,
            "registration_state": computer.registration_state,
            "failed_rules": [dict(e) for e in _described(tuple(computer.failed_rules or ()), language)],
            "evaluated_at": _datetime(computer.evaluated_at),
            "managed": computer.managed,
            "retired_at": _datetime(computer.retired_at),
            "last_check_in": _datetime(computer.last_check_in),
            "last_inventory_update": _datetime(computer.last_inventory_update),
            "entra_device_id": computer.entra_device_id,
            "company_portal_version": computer.company_portal_version,
            "has_company_portal": computer.has_company_portal,
            "os_version": computer.os_version,
            "os_build": computer.os_build,
            "model": computer.model,
            "user_email": computer.user_email,
            "user_accounts": [
                {
                    "id": user["id"],
                    "username": user["username"],
                    "email": user["email"],
                    "entra_user_id": user["entra_user_id"],
                    "entra_device_id": user["entra_device_id"],
                    "entra_state": user["entra_state"],
                    "is_registered": bool(user["entra_device_id"] and user["entra_user_id"]),
                    "registration_state": user["registration_state"],
                    "compliance_status": user["compliance_status"],
                    "failed_rules": [dict(e) for e in _described(tuple(user["failed_rules"] or ()), language)],
                }
                for user in users
            ],
        }


_DATETIME = serializers.DateTimeField()


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


class InventoryEventSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:inventory-event-detail")
    tenant = TenantField(read_only=True)

    class Meta:
        model = InventoryEvent
        fields = [
            "id", "url", "tenant", "source", "event_type", "received_at", "event_timestamp", "status", "error",
            "processed_at", "computer",
        ]
        read_only_fields = fields


class InventoryEventDetailSerializer(InventoryEventSerializer):
    class Meta(InventoryEventSerializer.Meta):
        fields = InventoryEventSerializer.Meta.fields + ["raw_body"]
        read_only_fields = fields


class UploadOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The record's position in the upload, from 0.")
    jamf_id = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=["created", "updated", "unchanged", "stale", "rejected"])
    reason = serializers.CharField(allow_blank=True)


class UploadSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    stale = serializers.IntegerField()
    rejected = serializers.IntegerField()


class UploadResultSerializer(serializers.Serializer):
    """The answer to an inventory upload: the stored event, the counts, and each record's outcome."""

    event = serializers.IntegerField(help_text="The InventoryEvent that stores the body.")
    summary = UploadSummarySerializer()
    input_error = serializers.CharField(allow_blank=True, help_text="Where unreadable input stopped the import.")
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Report or check-in dates ahead of the upload's receipt, stored as the time of receipt.",
    )
    results = UploadOutcomeSerializer(many=True)
