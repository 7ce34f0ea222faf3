"""Serializers for tenants, their Entra client secrets, and API tokens."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from knox.models import get_token_model
from rest_framework import serializers

from portal import tenancy
from portal.api.fields import TenantField
from portal.models import WEBHOOK_SECRET_MIN_LENGTH, AuditEvent, ClientSecret, Tenant


class ClientSecretSummarySerializer(serializers.ModelSerializer):
    """A secret as the API shows it: never its value."""

    has_secret = serializers.SerializerMethodField()
    is_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ClientSecret
        fields = ["id", "description", "expires_at", "is_expired", "has_secret", "created_at"]

    def get_has_secret(self, obj) -> bool:
        return bool(obj.value)


class ClientSecretSerializer(ClientSecretSummarySerializer):
    """Add an Entra client secret to a tenant. ``value`` is write-only: it is never shown again."""

    tenant = TenantField()
    value = serializers.CharField(
        write_only=True, trim_whitespace=True, max_length=2000, help_text="The secret's Value (not its Secret ID)."
    )

    class Meta(ClientSecretSummarySerializer.Meta):
        fields = ["id", "tenant", "value", "description", "expires_at", "is_expired", "has_secret", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            self.fields["value"].required = False  # omitted: the stored value stays

    def validate(self, attrs):
        if self.instance is not None and "tenant" in attrs and attrs["tenant"].pk != self.instance.tenant_id:
            raise serializers.ValidationError({"tenant": ["A secret cannot move to another tenant."]})
        return attrs


class TenantSerializer(serializers.ModelSerializer):
    """A tenant's configuration. Secrets are write-only; ``has_*`` and expiry dates say whether they are set."""

    url = serializers.HyperlinkedIdentityField(view_name="api:tenant-detail", lookup_field="slug")
    jamf_client_secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=2000, trim_whitespace=True,
        help_text="Write-only. An empty string clears it.",
    )
    webhook_secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=2000, trim_whitespace=True,
        help_text="Write-only: the secret Jamf Pro sends with its webhooks, at least %d characters (the admin's "
                  "\"New webhook secret\" generates one). An empty string clears it." % WEBHOOK_SECRET_MIN_LENGTH,
    )
    has_jamf_client_secret = serializers.SerializerMethodField()
    has_webhook_secret = serializers.SerializerMethodField()
    has_secret = serializers.SerializerMethodField(help_text="An unexpired Entra client secret is set.")
    secret_expires_at = serializers.SerializerMethodField(help_text="When the newest Entra client secret expires.")
    client_secrets = ClientSecretSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Tenant
        fields = [
            "id", "url", "slug", "name", "is_active",
            "cloud", "entra_tenant", "entra_tenant_id", "client_id", "use_own_app", "intune_enabled", "reporting_mode",
            "partner_policy_group_ids", "has_secret", "secret_expires_at", "client_secrets",
            "consent_granted_at", "consent_granted_by", "intune_partner",
            "landing_page", "landing_custom_url", "jamf_enrollment_url", "self_service_registration_url",
            "support_contact", "logo_url",
            "unresponsive_after_hours", "compliance_validity_days", "no_policy_compliant",
            "account_not_onboarded_days",
            "jamf_url", "jamf_client_id", "jamf_client_secret", "has_jamf_client_secret", "jamf_api_version",
            "webhook_username", "webhook_secret", "has_webhook_secret",
            "last_test_at", "last_test_ok", "last_test_message", "created_at", "updated_at",
        ]
        read_only_fields = [
            "entra_tenant_id", "last_test_at", "last_test_ok", "last_test_message", "created_at", "updated_at",
            "consent_granted_at", "consent_granted_by", "intune_partner",
        ]

    #: What is known of the tenant's secrets (which exist, when they expire): shown to the tenant's admins and
    #: MSP staff only, as GET /api/v1/client-secrets/ is; viewers and operators get the tenant without them.
    ADMIN_ONLY_FIELDS = ("has_secret", "secret_expires_at", "client_secrets", "has_jamf_client_secret",
                         "has_webhook_secret")

    def _admin_tenant_ids(self):
        """The tenants the caller administers (None: all), worked out once per request, lists included."""
        request = self.context.get("request")
        cache = self.context.setdefault("_admin_tenant_ids", {})
        if "ids" not in cache:
            user = getattr(request, "user", None)
            ids = tenancy.tenant_ids_for_user(user, tenancy.ADMIN) if request is not None else None
            if ids is not None and not isinstance(ids, list):
                ids = set(ids.values_list("tenant_id", flat=True))
            cache["ids"] = ids
        return cache["ids"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        admin_ids = self._admin_tenant_ids()
        if admin_ids is not None and instance.pk not in admin_ids:
            for name in self.ADMIN_ONLY_FIELDS:
                data.pop(name, None)
        return data

    def get_has_jamf_client_secret(self, obj) -> bool:
        return bool(obj.jamf_client_secret)

    def get_has_webhook_secret(self, obj) -> bool:
        return bool(obj.webhook_secret)

    def _newest_unexpired(self, obj):
        now = timezone.now()
        secrets = [s for s in obj.client_secrets.all() if s.expires_at > now]  # prefetched by the view
        return max(secrets, key=lambda s: s.expires_at, default=None)

    def get_has_secret(self, obj) -> bool:
        return self._newest_unexpired(obj) is not None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_secret_expires_at(self, obj):
        secret = self._newest_unexpired(obj)
        return serializers.DateTimeField().to_representation(secret.expires_at) if secret else None

    def validate_webhook_secret(self, value):
        if value and len(value) < WEBHOOK_SECRET_MIN_LENGTH:
            raise serializers.ValidationError(
                "At least %d characters: a short secret can be guessed. Generate one with the tenant page's "
                "\"New webhook secret\" button, or send a random string of %d characters or more."
                % (WEBHOOK_SECRET_MIN_LENGTH, WEBHOOK_SECRET_MIN_LENGTH)
            )
        return value

    def _msp_staff_only(self, name, value):
        """slug and is_active: URLs registered with Intune and Jamf Pro hang on them, so only MSP staff change them."""
        request = self.context.get("request")
        if request is not None and tenancy.is_msp_staff(request.user):
            return value
        if self.instance is None or value != getattr(self.instance, name):
            raise serializers.ValidationError("Only MSP staff can change this.")
        return value

    def validate_slug(self, value):
        return self._msp_staff_only("slug", value)

    def validate_is_active(self, value):
        return self._msp_staff_only("is_active", value)

    def validate_partner_policy_group_ids(self, value):
        from portal.models import GUID_RE

        if not isinstance(value, list) or not all(isinstance(item, str) and GUID_RE.match(item) for item in value):
            raise serializers.ValidationError("Give a list of Entra group IDs (GUIDs).")
        return value

    def validate(self, attrs):
        # The model's cross-field rules (Tenant.clean), on the instance as it would be saved.
        candidate = Tenant(**{f.attname: getattr(self.instance, f.attname) for f in Tenant._meta.concrete_fields}) \
            if self.instance is not None else Tenant()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class TokenSerializer(serializers.ModelSerializer):
    """An API token of the caller. The token itself is in the answer to the create, and nowhere else."""

    id = serializers.CharField(source="digest", read_only=True, help_text="The token's hash: its ID here.")
    prefix = serializers.CharField(source="token_key", read_only=True, help_text="The token's first characters.")
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, min_value=1,
        help_text="Days until the token expires (default %d)." % settings.REST_KNOX["TOKEN_TTL"].days,
    )
    token = serializers.SerializerMethodField(help_text="The token: shown once, in the answer to the create.")

    class Meta:
        model = get_token_model()
        fields = ["id", "prefix", "created", "expiry", "expires_in_days", "token"]
        read_only_fields = ["created", "expiry"]

    def validate_expires_in_days(self, value):
        if value > settings.API_TOKEN_MAX_DAYS:
            raise serializers.ValidationError("At most %d days." % settings.API_TOKEN_MAX_DAYS)
        return value

    def get_token(self, obj) -> str | None:
        return getattr(obj, "_plain_token", None)

    def create(self, validated_data):
        days = validated_data.get("expires_in_days")
        expiry = datetime.timedelta(days=days) if days else settings.REST_KNOX["TOKEN_TTL"]
        instance, token = get_token_model().objects.create(user=self.context["request"].user, expiry=expiry)
        instance._plain_token = token
        return instance


class AuditEventSerializer(serializers.ModelSerializer):
    """One entry of the audit trail: who (a person, with the API token they used), when, where from, what."""

    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    actor = serializers.CharField(source="actor_username", read_only=True, help_text="Username; empty: the system.")
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)
    api_token = serializers.CharField(source="api_token_key", read_only=True,
                                      help_text="The key (prefix) of the API token used; empty for a session.")
    action = serializers.CharField(source="get_action_display", read_only=True)
    object_type = serializers.SerializerMethodField()
    object_id = serializers.CharField(source="object_pk", read_only=True)
    changes = serializers.JSONField(read_only=True, help_text='{"field": [old, new]}; secrets as set / rotated.')
    details = serializers.JSONField(source="additional_data", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "timestamp", "tenant", "actor", "actor_id", "api_token", "remote_addr", "event", "action",
                  "object_type", "object_id", "object_repr", "changes", "details"]
        read_only_fields = fields

    def get_object_type(self, obj) -> str:
        return "%s.%s" % (obj.content_type.app_label, obj.content_type.model)
