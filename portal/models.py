"""Tenancy core: customer tenants, the MSP's partner application, Entra credentials, and who may see them."""

import re
from urllib.parse import parse_qs, urlsplit

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.models import AuthToken

from portal import audit_context
from portal.fields import EncryptedTextField
from portal.outbound import validate_outbound_url
from portal.tenancy import ROLE_CHOICES, VIEWER, scoped_queryset

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")

validate_guid = RegexValidator(GUID_RE, _("Enter a GUID such as 0012166f-5db5-41f7-b832-d8763d641274."))


def validate_entra_tenant(value):
    """An Entra tenant is named by its domain (contoso.onmicrosoft.com) or its GUID."""
    if not (GUID_RE.match(value) or DOMAIN_RE.match(value)):
        raise ValidationError(
            _("Enter the tenant's domain (contoso.onmicrosoft.com) or its tenant ID (a GUID)."), code="invalid"
        )


def validate_https_url(value):
    URLValidator(schemes=["https"], message=_("Enter an https:// URL."))(value)


SELF_SERVICE_PARAM_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SELF_SERVICE_MESSAGE = _(
    "Enter the Self Service link Jamf Pro gives (jamfselfservice://content?entity=policy&id=12&action=view) "
    "or an https:// URL."
)


def validate_self_service_url(value):
    """A Jamf Self Service link (``jamfselfservice://content?entity=…&id=…[&action=…]``) or an https URL.

    Jamf Pro's "Copy URL" of a Self Service item gives ``jamfselfservice://content?entity=policy&id=N&action=view``
    (entity also configprofile, ebook, app, ...). The link only opens the Self Service app on the Mac, so
    nothing but that shape is accepted: no other host, path, user info, port or fragment.
    """
    if not value.lower().startswith("jamfselfservice:"):
        URLValidator(schemes=["https"], message=SELF_SERVICE_MESSAGE)(value)
        return
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError(SELF_SERVICE_MESSAGE, code="invalid") from None
    if (
        any(char.isspace() or ord(char) < 32 for char in value)
        or not value.startswith("jamfselfservice://")
        or parts.netloc.lower() != "content"
        or port is not None
        or parts.path not in ("", "/")
        or parts.fragment
    ):
        raise ValidationError(SELF_SERVICE_MESSAGE, code="invalid")
    try:
        params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ValidationError(SELF_SERVICE_MESSAGE, code="invalid") from None
    entity, item_id = params.get("entity", []), params.get("id", [])
    if (
        len(entity) != 1 or len(item_id) != 1 or not item_id[0].isdigit()
        or any(len(values) != 1 or not SELF_SERVICE_PARAM_RE.match(values[0]) for values in params.values())
    ):
        raise ValidationError(SELF_SERVICE_MESSAGE, code="invalid")


#: Webhook secrets set by hand must be at least this long (the portal generates 43 characters).
WEBHOOK_SECRET_MIN_LENGTH = 32


class Cloud(models.TextChoices):
    GLOBAL = "global", _("Global (commercial)")
    USGOV = "usgov", _("US Government (GCC High)")
    USGOV_DOD = "usgov_dod", _("US Government (DoD)")
    CHINA = "china", _("China (21Vianet)")


class ReportingMode(models.TextChoices):
    PARTNER_COMPLIANCE = "partner_compliance", _("Partner compliance (the portal decides compliance)")
    INVENTORY = "inventory", _("Inventory (legacy: Intune evaluates the attributes)")


class LandingPage(models.TextChoices):
    REGISTRATION = "registration", _("Device registration page")
    ACCESS_DENIED = "access_denied", _("Access denied page")
    CUSTOM = "custom", _("Custom web page")


class JamfApiVersion(models.TextChoices):
    AUTO = "auto", _("Detect")
    V3 = "v3", _("v3 (computers-inventory)")
    V4 = "v4", _("v4 (Jamf Pro 11.30 and later)")


class TenantQuerySet(scoped_queryset("pk")):
    def with_own_app(self):
        """Tenants that reach Microsoft with their own app registration (``Tenant.uses_own_app``) and have its ID:
        the ones whose client secrets matter; a tenant in partner mode has none of its own."""
        return self.exclude(client_id="").filter(
            models.Q(use_own_app=True) | models.Q(reporting_mode=ReportingMode.INVENTORY)
        )


class Tenant(models.Model):
    """One MSP customer: its Entra ID / Intune connection, its Jamf Pro, and its landing page."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True, help_text=_("Used in URLs: webhooks, landing pages, API."))
    is_active = models.BooleanField(default=True)

    # Entra ID and Intune
    cloud = models.CharField(max_length=16, choices=Cloud.choices, default=Cloud.GLOBAL)
    entra_tenant = models.CharField(
        _("Entra tenant"),
        max_length=253,
        blank=True,
        validators=[validate_entra_tenant],
        help_text=_("The tenant's domain (contoso.onmicrosoft.com) or tenant ID."),
    )
    entra_tenant_id = models.UUIDField(
        _("Entra tenant ID"), null=True, blank=True, editable=False, help_text=_("Learned from the token.")
    )
    client_id = models.CharField(
        _("own application (client) ID"),
        max_length=36,
        blank=True,
        validators=[validate_guid],
        help_text=_("Only for the legacy inventory mode or an override: an app registered in the customer's tenant."),
    )
    use_own_app = models.BooleanField(
        _("use the tenant's own app registration"),
        default=False,
        help_text=_(
            "Override the MSP's partner application with the app above and its client secrets. The legacy "
            "inventory mode always uses the tenant's own app."
        ),
    )
    consent_granted_at = models.DateTimeField(
        _("admin consent granted"), null=True, blank=True, editable=False,
        help_text=_("When Entra ID redirected back after a Global Administrator granted consent."),
    )
    consent_granted_by = models.CharField(
        _("consent link issued by"), max_length=150, blank=True, editable=False,
        help_text=_("The portal user who issued the consent link that was used."),
    )
    intune_partner = models.JSONField(
        _("Intune partner state"), default=dict, blank=True, editable=False,
        help_text=_("What the last connection test read from Graph complianceManagementPartners."),
    )
    intune_enabled = models.BooleanField(
        _("Intune integration enabled"),
        default=False,
        help_text=_("Clearing it deprovisions the tenant and stops reports, but keeps the configuration."),
    )
    reporting_mode = models.CharField(
        max_length=24, choices=ReportingMode.choices, default=ReportingMode.PARTNER_COMPLIANCE
    )
    partner_policy_group_ids = models.JSONField(
        _("partner policy group IDs"),
        default=list, blank=True, help_text=_("Entra group IDs the partner compliance policy is assigned to.")
    )

    # Landing page for Macs Entra does not recognise
    landing_page = models.CharField(max_length=16, choices=LandingPage.choices, default=LandingPage.REGISTRATION)
    landing_custom_url = models.URLField(
        _("custom landing URL"), blank=True, validators=[validate_https_url], max_length=500
    )
    jamf_enrollment_url = models.URLField(
        _("Jamf Pro enrollment portal URL"), blank=True, validators=[validate_https_url], max_length=500
    )
    self_service_registration_url = models.CharField(
        _("Self Service registration link"),
        max_length=500,
        blank=True,
        validators=[validate_self_service_url],
        help_text=_("A jamfselfservice:// link to the policy that registers the Mac with Entra ID."),
    )
    support_contact = models.CharField(max_length=200, blank=True, help_text=_("Shown to end users."))
    logo_url = models.URLField(
        _("logo URL"), blank=True, validators=[validate_https_url, validate_outbound_url], max_length=500
    )

    # Rules
    unresponsive_after_hours = models.PositiveIntegerField(
        _("unresponsive after (hours)"),
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 30)]
    )
    compliance_validity_days = models.PositiveIntegerField(
        _("compliance validity period (days)"),
        default=30, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    no_policy_compliant = models.BooleanField(
        _("Macs without a policy are compliant"),
        default=False,
        help_text=_("Off (recommended under conditional access): a Mac no enabled policy covers is not compliant."),
    )
    account_not_onboarded_days = models.PositiveIntegerField(
        _("not onboarded after (days)"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("Company Portal installed this many days without Entra registration flags the Mac as "
                    "suspected AccountNotOnboarded."),
    )

    # Jamf Pro
    jamf_url = models.URLField(
        _("Jamf Pro URL"), blank=True, validators=[validate_https_url, validate_outbound_url], max_length=500,
        help_text=_("Must resolve to a public address, unless the MSP allow-lists the host (on-premises Jamf Pro)."),
    )
    jamf_client_id = models.CharField(_("Jamf Pro API client ID"), max_length=200, blank=True)
    jamf_client_secret = EncryptedTextField(_("Jamf Pro API client secret"), blank=True, default="")
    jamf_api_version = models.CharField(
        _("Jamf Pro API version"), max_length=8, choices=JamfApiVersion.choices, default=JamfApiVersion.AUTO
    )
    webhook_username = models.CharField(_("Jamf webhook username"), max_length=150, blank=True, default="jamf")
    webhook_secret = EncryptedTextField(_("Jamf webhook secret"), blank=True, default="")

    # Last connection test
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_ok = models.BooleanField(_("last test passed"), null=True, editable=False)
    last_test_message = models.TextField(blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if self.landing_page == LandingPage.CUSTOM and not self.landing_custom_url:
            errors["landing_custom_url"] = _("A custom landing page needs its https URL.")
        if self.intune_enabled and not self.entra_tenant:
            errors["intune_enabled"] = _("Set the Entra tenant before enabling Intune.")
        elif self.intune_enabled and self.uses_own_app and not self.client_id:
            errors["client_id"] = _(
                "The legacy inventory mode and an override need the tenant's own application (client) ID."
            )
        elif self.intune_enabled and not self.uses_own_app and PartnerApplication.current() is None:
            errors["intune_enabled"] = _(
                "Set up the MSP's partner application first (Partner application in the admin)."
            )
        if self.jamf_client_id and not self.jamf_url:
            errors["jamf_url"] = _("Set the Jamf Pro URL to use API credentials.")
        if errors:
            raise ValidationError(errors)

    @property
    def uses_own_app(self):
        """True when the tenant talks to Microsoft with its own app registration instead of the partner app.

        ``Tenant.objects.with_own_app()`` is the same test in SQL (plus a known client ID)."""
        return self.use_own_app or self.reporting_mode == ReportingMode.INVENTORY

    @property
    def connection_configured(self):
        """The Entra tenant and an application to reach it with are known (design §6a)."""
        if not self.entra_tenant:
            return False
        if self.uses_own_app:
            return bool(self.client_id)
        return PartnerApplication.current() is not None

    @property
    def has_jamf_api(self):
        return bool(self.jamf_url and self.jamf_client_id and self.jamf_client_secret)


class ClientSecret(models.Model):
    """An Entra application client secret. Several may be valid during a rotation."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="client_secrets")
    value = EncryptedTextField(help_text=_("The secret's Value (not its Secret ID). Never shown again."))
    description = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(help_text=_("As shown in Entra ID under Certificates & secrets."))
    created_at = models.DateTimeField(auto_now_add=True)

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        ordering = ["-expires_at", "-created_at"]

    def __str__(self):
        return self.description or "secret expiring %s" % self.expires_at.date().isoformat()

    @property
    def is_expired(self):
        return self.expires_at <= timezone.now()


class Membership(models.Model):
    """A user's role in one tenant. MSP staff (superusers) need none."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=VIEWER)

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]
        ordering = ["tenant__name", "user__username"]

    def __str__(self):
        return "%s: %s in %s" % (self.user, self.role, self.tenant)


class SyncRun(models.Model):
    """One background run for a tenant (evaluate, deliver, status poll, provisioning, Jamf pull), for the admin.

    Shared bookkeeping of every app's background work (``portal.runs.record_run``), so it lives in portal: devices
    and compliance both record runs without importing each other. The table keeps its first name.
    """

    class Kind(models.TextChoices):
        EVALUATE = "evaluate", _("Evaluate and queue reports")
        DELIVER = "deliver", _("Deliver reports")
        STATUS = "status", _("Read back Intune's status")
        PROVISION = "provision", _("Provision or deprovision")
        JAMF_PULL = "jamf_pull", _("Jamf Pro pull")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIAL = "partial", _("Partly failed")
        FAILED = "failed", _("Failed")

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="sync_runs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    counters = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        db_table = "compliance_syncrun"
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["tenant", "kind", "-started_at"], name="syncrun_tenant_kind")]

    def __str__(self):
        return "%s %s %s" % (self.get_kind_display(), self.tenant_id, self.started_at)

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class APIToken(AuthToken):
    """knox's API token as the admin shows it: named by the key's first characters, never by its digest."""

    class Meta:
        proxy = True
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return "%s\u2026 (%s)" % (self.token_key, self.user)


class Lane(models.Model):
    """Coordination of one kind of background run for one tenant, across every process (``portal.lanes``).

    ``dirty``: work was asked for since the running (or last) run took the mark; ``due_at``: a task is queued to
    start then; ``running_since``: a run holds the lane. Updated only by single conditional UPDATEs, so it
    holds on PostgreSQL and on SQLite (WAL) with the web server and the workers in separate processes.
    """

    kind = models.CharField(max_length=16)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    dirty = models.BooleanField(default=False)
    requested_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)
    round_started_at = models.DateTimeField(null=True, blank=True)  # the last round's start: the next one's "since"
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "tenant"], name="lane_one_per_kind_and_tenant")]

    def __str__(self):
        return "%s %s" % (self.kind, self.tenant_id)


class AuditEventQuerySet(scoped_queryset("tenant")):
    """Audit entries, scoped like every tenant-owned row; entries of no tenant (users, tokens) are MSP staff's."""


class AuditEventManager(LogEntryManager.from_queryset(AuditEventQuerySet)):
    """django-auditlog's manager, which also notes the tenant of the changed row (portal/audit.py)."""

    def log_create(self, instance, force_log=False, **kwargs):
        kwargs = audit_context.describe_change(instance, kwargs)
        return super().log_create(instance, force_log=force_log, **kwargs)


class AuditEvent(AbstractLogEntry):
    """One entry of the audit trail: a change to a row (django-auditlog) or an action a person ran.

    ``actor`` is the person (kept by name in ``actor_username`` if the user is deleted), ``api_token_key``
    the API token they used (its key, never the token), ``remote_addr`` where from, ``changes`` the
    fields as ``{"field": [old, new]}``, with secrets only as "set" / "rotated" / "not set".
    """

    class Action(AbstractLogEntry.Action):
        PERFORM = 10
        choices = (*AbstractLogEntry.Action.choices, (PERFORM, _("action")))

    action = models.PositiveSmallIntegerField(_("action"), choices=Action.choices, db_index=True)
    event = models.CharField(
        _("event"), max_length=64, db_index=True,
        help_text=_("create, update, delete, or the name of the action (retire, resend, sync_now, ...)."),
    )
    # No database constraint: the trail of a deleted tenant stays, with its ID.
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_username = models.CharField(_("actor's username"), max_length=150, blank=True)
    api_token_key = models.CharField(
        _("API token"), max_length=32, blank=True, help_text=_("The key (first characters) of the API token used.")
    )

    objects = AuditEventManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="auditevent_tenant_id")]

    def save(self, *args, **kwargs):
        if not self.event:
            self.event = {0: "create", 1: "update", 2: "delete", 3: "access"}.get(self.action, "action")
        audit_context.fill(self)
        super().save(*args, **kwargs)
        if self.actor_id is not None and not self.actor_username:
            # The actor came from auditlog.context.set_actor (a command), whose receiver runs inside save().
            self.actor_username = self.actor.get_username()
            type(self).objects.filter(pk=self.pk).update(actor_username=self.actor_username)


class CredentialKind(models.TextChoices):
    CERTIFICATE = "certificate", _("Certificate (recommended)")
    SECRET = "secret", _("Client secret")


class PartnerApplication(models.Model):
    """The MSP's one multi-tenant Entra application that Microsoft onboarded as an Intune compliance partner.

    One row per installation (design §6a). Customer tenants in partner mode consent to it and need no app of
    their own. Credentials given through the environment (``PORTAL_PARTNER_*``, see ``portal/partner.py``) take
    the place of this row; the admin then shows them read-only.
    """

    client_id = models.CharField(_("application (client) ID"), max_length=36, validators=[validate_guid])
    display_name = models.CharField(
        max_length=200,
        help_text=_("The partner's name exactly as Intune lists it under Partner compliance management."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("partner application")
        permissions = [("manage_partner_application", _("MSP admin: manage the partner application"))]

    def __str__(self):
        return self.display_name or self.client_id

    def save(self, *args, **kwargs):
        if self.pk is None and PartnerApplication.objects.exists():
            raise ValidationError(_("There is one partner application per installation: edit the existing one."))
        super().save(*args, **kwargs)

    @classmethod
    def current(cls):
        """The partner application in use (environment first, then the database), or None."""
        from portal.partner import partner_application

        return partner_application()


class PartnerCredential(models.Model):
    """A credential of the partner application: a certificate the portal generated, or a client secret.

    Several may be valid at once (a rollover): the newest unexpired is tried first, the next when Entra
    rejects it. The private key and the secret are encrypted at rest; only the certificate is public.
    """

    application = models.ForeignKey(PartnerApplication, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=16, choices=CredentialKind.choices, default=CredentialKind.CERTIFICATE)
    description = models.CharField(max_length=200, blank=True)
    secret_value = EncryptedTextField(blank=True, default="", help_text=_("The secret's Value. Never shown again."))
    private_key = EncryptedTextField(blank=True, default="")  # PEM (PKCS#8), certificates only
    certificate = models.TextField(blank=True, default="")  # PEM, the public part uploaded to Entra ID
    thumbprint = models.CharField(max_length=40, blank=True, default="")  # SHA-1 of the DER, hex, as msal wants
    not_before = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-expires_at", "-created_at"]
        verbose_name = _("partner credential")

    def __str__(self):
        if self.kind == CredentialKind.CERTIFICATE:
            return "certificate %s" % (self.thumbprint or "?")
        return self.description or "secret expiring %s" % self.expires_at.date().isoformat()

    @property
    def is_expired(self):
        return self.expires_at <= timezone.now()


class ConsentStateUse(models.Model):
    """A used admin-consent ``state``: the nonce is unique, so a replayed state is refused."""

    nonce = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    used_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.nonce
