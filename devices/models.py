"""Macs and their users as Jamf Pro reports them, and the raw inventory events that brought them."""

import json
import re

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from portal.models import Tenant
from portal.tenancy import scoped_queryset


class FileVaultState(models.TextChoices):
    """DISK_ENCRYPTION bootPartitionEncryptionDetails.partitionFileVault2State."""

    ENCRYPTED = "ENCRYPTED", _("Encrypted")
    ENCRYPTING = "ENCRYPTING", _("Encrypting")
    DECRYPTING = "DECRYPTING", _("Decrypting")
    NOT_ENCRYPTED = "NOT_ENCRYPTED", _("Not encrypted")
    UNKNOWN = "UNKNOWN", _("Unknown")


class GatekeeperStatus(models.TextChoices):
    """SECURITY gatekeeperStatus."""

    APP_STORE = "APP_STORE", _("App Store only")
    APP_STORE_AND_IDENTIFIED_DEVELOPERS = (
        "APP_STORE_AND_IDENTIFIED_DEVELOPERS",
        _("App Store and identified developers"),
    )
    DISABLED = "DISABLED", _("Disabled")
    NOT_COLLECTED = "NOT_COLLECTED", _("Not collected")


class SipStatus(models.TextChoices):
    """SECURITY sipStatus."""

    ENABLED = "ENABLED", _("Enabled")
    DISABLED = "DISABLED", _("Disabled")
    NOT_COLLECTED = "NOT_COLLECTED", _("Not collected")
    NOT_AVAILABLE = "NOT_AVAILABLE", _("Not available")


class EntraState(models.TextChoices):
    """LOCAL_USER_ACCOUNTS azureActiveDirectoryId: Jamf's view of the user's Entra registration."""

    ACTIVATED = "ACTIVATED", _("Activated")
    DEACTIVATED = "DEACTIVATED", _("Deactivated")
    UNRESPONSIVE = "UNRESPONSIVE", _("Unresponsive")
    UNKNOWN = "UNKNOWN", _("Unknown")


class InventoryState(models.IntegerChoices):
    """Conditional Access inventory state (seed appendix; design section 5)."""

    ACTIVATED = 0, _("Activated")
    DEACTIVATED = 1, _("Deactivated")
    UNRESPONSIVE = 2, _("Unresponsive")


class ComplianceStatus(models.TextChoices):
    COMPLIANT = "compliant", _("Compliant")
    NOT_COMPLIANT = "notCompliant", _("Not compliant")


class Registration(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    NOT_STARTED = "not_started", _("Not started")
    ACCOUNT_NOT_ONBOARDED = "account_not_onboarded", _("Suspected AccountNotOnboarded")


RULE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def failing_rule_q(code, field="failed_rules"):
    """A Q for rows whose ``failed_rules`` JSON list holds ``code``, on SQLite and PostgreSQL alike.

    Django's JSON ``contains`` lookup does not exist on SQLite, so this matches the quoted code in
    the JSON text (``icontains`` works on both). Codes are ``[a-z0-9_]``: the quotes delimit them,
    so "sip_off" never matches "gatekeeper_sip_off", and LIKE wildcards are escaped by Django.
    """
    if not RULE_CODE_RE.match(code or ""):
        raise ValueError("not a rule code: %r" % (code,))
    return Q(**{"%s__icontains" % field: json.dumps(code)})


def smart_group_q(name):
    """The condition of a smart group, as a Q (so the admin can count every group in one query)."""
    registered = Q(registration_state=Registration.REGISTERED)
    groups = {
        "without_company_portal": Q(company_portal_version__isnull=True),
        # Company Portal installed but no user finished Entra registration (AccountNotOnboarded included).
        "portal_not_registered": Q(company_portal_version__isnull=False) & ~registered,
        # Company Portal installed for days and still not registered: opened by hand, not from Self Service.
        "account_not_onboarded": Q(registration_state=Registration.ACCOUNT_NOT_ONBOARDED),
        "registered": registered,
        "registered_compliant": registered & Q(compliance_status=ComplianceStatus.COMPLIANT),
        "unresponsive": Q(inventory_state=InventoryState.UNRESPONSIVE),
    }
    return groups[name]


SMART_GROUPS = [
    ("without_company_portal", _("Without Company Portal")),
    ("portal_not_registered", _("Company Portal, not registered")),
    ("account_not_onboarded", _("Suspected AccountNotOnboarded")),
    ("registered", _("Registered")),
    ("registered_compliant", _("Registered and compliant")),
    ("unresponsive", _("Unresponsive")),
]


class ComputerQuerySet(scoped_queryset("tenant")):
    """Macs, with the smart groups of the seed's steps 3, 4 and 7 (on the stored evaluation results)."""

    def smart_group(self, name):
        return self.filter(smart_group_q(name))

    def without_company_portal(self):
        return self.smart_group("without_company_portal")

    def company_portal_not_registered(self):
        return self.smart_group("portal_not_registered")

    def account_not_onboarded(self):
        return self.smart_group("account_not_onboarded")

    def registered(self):
        return self.smart_group("registered")

    def registered_and_compliant(self):
        return self.smart_group("registered_compliant")

    def unresponsive(self):
        return self.smart_group("unresponsive")

    def failing_rule(self, code):
        return self.filter(failing_rule_q(code))

    def not_evaluated(self):
        return self.filter(evaluated_at__isnull=True)


class Computer(models.Model):
    """A Mac managed by a tenant's Jamf Pro, with every attribute of the seed's appendix table."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="computers")
    jamf_id = models.CharField(_("Jamf ID"), max_length=64)
    udid = models.CharField(_("UDID"), max_length=64)
    serial_number = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=255, blank=True)
    last_check_in = models.DateTimeField(
        _("last check-in"), null=True, blank=True, help_text=_("The recurring check-in (lastContact).")
    )
    last_inventory_update = models.DateTimeField(null=True, blank=True, help_text=_("Jamf's general.reportDate."))
    last_enrolled = models.DateTimeField(null=True, blank=True)
    managed = models.BooleanField(default=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    entra_device_id = models.CharField(_("Entra device ID"), max_length=64, blank=True)
    company_portal_version = models.CharField(_("Company Portal version"), max_length=64, null=True, blank=True)
    company_portal_seen_at = models.DateTimeField(
        _("Company Portal seen at"),
        null=True, blank=True, help_text=_("When Company Portal was first seen installed.")
    )

    # Hardware
    architecture = models.CharField(max_length=32, blank=True)
    open_ram_slots = models.IntegerField(_("open RAM slots"), null=True, blank=True)
    battery_capacity_percent = models.IntegerField(_("battery capacity (%)"), null=True, blank=True)
    boot_rom = models.CharField(_("boot ROM"), max_length=64, blank=True)
    bus_speed_mhz = models.IntegerField(_("bus speed (MHz)"), null=True, blank=True)
    cache_size_kb = models.IntegerField(_("cache size (KB)"), null=True, blank=True)
    mac_address = models.CharField(_("MAC address"), max_length=32, blank=True)
    alt_mac_address = models.CharField(_("alternate MAC address"), max_length=32, blank=True)
    make = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=255, blank=True)
    model_identifier = models.CharField(max_length=64, blank=True)
    nic_speed = models.CharField(_("NIC speed"), max_length=32, blank=True)
    core_count = models.IntegerField(null=True, blank=True)
    processor_count = models.IntegerField(null=True, blank=True)
    processor_speed_mhz = models.IntegerField(_("processor speed (MHz)"), null=True, blank=True)
    processor_type = models.CharField(max_length=128, blank=True)
    smc_version = models.CharField(_("SMC version"), max_length=64, blank=True)
    total_ram_mb = models.IntegerField(_("total RAM (MB)"), null=True, blank=True)

    # Operating system
    os_name = models.CharField(_("OS name"), max_length=64, blank=True)
    os_version = models.CharField(_("OS version"), max_length=64, blank=True)
    os_build = models.CharField(_("OS build"), max_length=64, blank=True)
    platform = models.CharField(max_length=32, blank=True)
    ad_status = models.CharField(_("Active Directory status"), max_length=255, blank=True)

    # User and location
    user_email = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=255, blank=True)

    # Security
    filevault_state = models.CharField(
        _("FileVault 2 (boot partition)"), max_length=16, choices=FileVaultState.choices, null=True, blank=True
    )
    filevault2_status = models.CharField(_("FileVault 2 status"), max_length=16, blank=True)
    gatekeeper = models.CharField(
        _("Gatekeeper"), max_length=40, choices=GatekeeperStatus.choices, null=True, blank=True
    )
    sip = models.CharField(_("SIP"), max_length=16, choices=SipStatus.choices, null=True, blank=True)
    auto_login_disabled = models.BooleanField(_("automatic login disabled"), null=True, blank=True)

    # Evaluation results (compliance/evaluation.py), stored so lists and reports never re-evaluate.
    # Null means "not evaluated yet". The computer's status is its worst user's.
    inventory_state = models.SmallIntegerField(choices=InventoryState.choices, null=True, blank=True)
    compliance_status = models.CharField(max_length=16, choices=ComplianceStatus.choices, null=True, blank=True)
    registration_state = models.CharField(max_length=24, choices=Registration.choices, null=True, blank=True)
    failed_rules = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    # Bookkeeping
    source_hash = models.CharField(max_length=40, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ComputerQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "jamf_id"], name="computer_unique_tenant_jamf_id"),
            models.UniqueConstraint(fields=["tenant", "udid"], name="computer_unique_tenant_udid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "last_check_in"], name="computer_tenant_checkin"),
            models.Index(fields=["serial_number"], name="computer_serial"),
            models.Index(fields=["entra_device_id"], name="computer_entra_device"),
            models.Index(fields=["tenant", "compliance_status"], name="computer_tenant_compliance"),
            models.Index(fields=["tenant", "inventory_state"], name="computer_tenant_state"),
        ]

    def __str__(self):
        return self.name or self.serial_number or self.udid

    @property
    def has_company_portal(self):
        return self.company_portal_version is not None


class UserAccount(models.Model):
    """A local or mobile account on a Mac, with its Entra registration and password attributes.

    A null password attribute means NotEnforced.
    """

    computer = models.ForeignKey(Computer, on_delete=models.CASCADE, related_name="user_accounts")
    username = models.CharField(max_length=255)
    full_name = models.CharField(max_length=255, blank=True)
    uid = models.CharField(_("UID"), max_length=32, blank=True)
    account_type = models.CharField(max_length=16, blank=True)
    is_admin = models.BooleanField(null=True)
    email = models.CharField(_("e-mail / UPN"), max_length=255, blank=True)
    entra_user_id = models.CharField(_("Entra user ID"), max_length=64, blank=True)
    entra_device_id = models.CharField(_("Entra device ID"), max_length=64, blank=True)
    entra_state = models.CharField(
        _("Jamf registration state"), max_length=16, choices=EntraState.choices, null=True, blank=True
    )
    password_history_depth = models.IntegerField(_("password history depth"), null=True, blank=True)
    password_min_complex_characters = models.IntegerField(
        _("password minimum complex characters"), null=True, blank=True
    )
    password_max_age_days = models.IntegerField(_("password maximum age (days)"), null=True, blank=True)
    password_type = models.CharField(max_length=16, null=True, blank=True)
    password_min_length = models.IntegerField(_("password minimum length"), null=True, blank=True)
    screensaver_idle_minutes = models.IntegerField(_("screensaver idle (minutes)"), null=True, blank=True)

    # Evaluation results for this (computer, user) pair.
    registration_state = models.CharField(max_length=24, choices=Registration.choices, null=True, blank=True)
    compliance_status = models.CharField(max_length=16, choices=ComplianceStatus.choices, null=True, blank=True)
    failed_rules = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    objects = scoped_queryset("computer__tenant").as_manager()

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(fields=["computer", "username"], name="useraccount_unique_computer_username"),
        ]

    def __str__(self):
        return self.username

    @property
    def is_registered(self):
        return bool(self.entra_device_id and self.entra_user_id)


class InventoryEvent(models.Model):
    """A body received from Jamf Pro (webhook, API pull or upload), stored before it is processed."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        API_PULL = "api_pull", _("Jamf Pro API pull")
        UPLOAD = "upload", _("Upload")
        IMPORT = "import", _("Import command")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="inventory_events")
    source = models.CharField(max_length=16, choices=Source.choices)
    event_type = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    event_timestamp = models.DateTimeField(null=True, blank=True)
    raw_body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    computer = models.ForeignKey(Computer, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-received_at"], name="event_tenant_received")]

    def __str__(self):
        return "%s %s" % (self.event_type or self.source, self.received_at)
