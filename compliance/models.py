"""Compliance policies, reports to Intune and sync runs."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from devices.models import ComplianceStatus, InventoryState
from devices.osversion import UnparseableVersion, parse_build, parse_version
from portal.models import Tenant
from portal.tenancy import scoped_queryset


class GatekeeperRequirement(models.TextChoices):
    """Intune's "Allow apps downloaded from these locations" for macOS."""

    IDENTIFIED_DEVELOPERS = "identified_developers", _("Mac App Store and identified developers")
    APP_STORE = "app_store", _("Mac App Store only")


class PasswordType(models.TextChoices):
    """Intune's required password type: Simple allows any enforced password, AlphaNumeric needs letters and digits."""

    SIMPLE = "Simple", _("Simple (any enforced password)")
    ALPHANUMERIC = "AlphaNumeric", _("Alphanumeric")


class CompliancePolicy(models.Model):
    """A tenant's macOS compliance policy, mirroring Intune's macOS compliance settings plus freshness.

    Every enabled policy of a tenant applies to every Mac: a Mac is compliant when it passes all of
    them. An empty field means "not configured" (the rule is off).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="compliance_policies")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)

    # Device properties
    min_os_version = models.CharField(
        _("minimum macOS version"), max_length=32, blank=True, help_text=_("For example 14.7.1 or 15.0.")
    )
    max_os_version = models.CharField(_("maximum macOS version"), max_length=32, blank=True)
    min_os_build = models.CharField(
        _("minimum macOS build"), max_length=32, blank=True, help_text=_("For example 23H222.")
    )
    max_os_build = models.CharField(_("maximum macOS build"), max_length=32, blank=True)

    # System security
    require_filevault = models.BooleanField(_("require FileVault"), default=False)
    require_sip = models.BooleanField(_("require System Integrity Protection"), default=False)
    gatekeeper = models.CharField(
        _("Gatekeeper: allow apps from"), max_length=32, choices=GatekeeperRequirement.choices, blank=True,
        help_text=_("Empty: not configured."),
    )
    require_auto_login_disabled = models.BooleanField(_("require automatic login disabled"), default=False)

    # Password (per user account; NotEnforced fails a rule that asks for a value)
    password_min_length = models.PositiveSmallIntegerField(
        _("minimum password length"), null=True, blank=True, validators=[MinValueValidator(4), MaxValueValidator(16)]
    )
    password_type = models.CharField(max_length=16, choices=PasswordType.choices, blank=True)
    password_min_character_sets = models.PositiveSmallIntegerField(
        _("minimum number of complex characters"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(4)],
    )
    password_expiration_days = models.PositiveIntegerField(
        _("password expiration (days)"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    password_history = models.PositiveSmallIntegerField(
        _("previous passwords to prevent reuse"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24)],
    )
    screensaver_minutes = models.PositiveSmallIntegerField(
        _("maximum minutes of inactivity before the screensaver"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )

    # Freshness
    max_inventory_age_days = models.PositiveSmallIntegerField(
        _("maximum days since the last inventory"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        verbose_name = _("compliance policy")
        verbose_name_plural = _("compliance policies")
        ordering = ["tenant__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="compliancepolicy_unique_tenant_name"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        versions = {}
        for name, parse in [
            ("min_os_version", parse_version), ("max_os_version", parse_version),
            ("min_os_build", parse_build), ("max_os_build", parse_build),
        ]:
            value = getattr(self, name).strip()
            setattr(self, name, value)
            if not value:
                continue
            try:
                versions[name] = parse(value)
            except UnparseableVersion as exc:
                errors[name] = str(exc)
        for low, high in [("min_os_version", "max_os_version"), ("min_os_build", "max_os_build")]:
            if low in versions and high in versions and versions[low] > versions[high]:
                errors[high] = _("The maximum must not be lower than the minimum.")
        if errors:
            raise ValidationError(errors)


class ComplianceDailySnapshot(models.Model):
    """A tenant's fleet counts on one day (UTC), for the 90-day series of ``/api/v1/reports/compliance/``.

    Filled by the scheduled task ``compliance.tasks.snapshot_task`` (compliance/reports.py); a later run
    on the same day overwrites that day's row, so the last run of a day wins.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="compliance_snapshots")
    date = models.DateField()
    total = models.PositiveIntegerField(default=0)
    compliant = models.PositiveIntegerField(default=0)
    not_compliant = models.PositiveIntegerField(default=0)
    not_evaluated = models.PositiveIntegerField(default=0)
    activated = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    unresponsive = models.PositiveIntegerField(default=0)
    registered = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField()

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        ordering = ["tenant", "date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "date"], name="compliancesnapshot_unique_tenant_date"),
        ]

    def __str__(self):
        return "%s %s" % (self.tenant_id, self.date)


class ComplianceReport(models.Model):
    """One report of a (computer, user account) pair to Intune: the outbox row and the history entry in one.

    The pending rows are the outbox (``compliance/outbox.py`` makes them, ``compliance/delivery.py``
    sends them). ``payload`` is exactly the entities sent; ``message_id`` is fixed when the row is
    made (its :class:`OutboxMessage` tracks the delivery) and kept, so a resend is the same PUT.
    ``latest`` marks the newest report of each pair: the one a new evaluation compares against. A
    ``delete`` row records a deletion from Entra ID and Intune (Graph) in the same history.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted by Intune")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        SUPERSEDED = "superseded", _("Superseded")

    class Kind(models.TextChoices):
        REPORT = "report", _("Device state report")
        DELETE = "delete", _("Deletion from Entra ID and Intune")

    class Reason(models.TextChoices):
        NEW = "new", _("First report")
        CHANGED = "changed", _("Inventory or compliance changed")
        STATE = "state", _("Inventory state changed")
        REFRESH = "refresh", _("Refresh within the validity period")
        RETRY = "retry", _("Retry of a failed report")
        RESEND = "resend", _("Re-sent by an operator")
        RETIRE = "retire", _("Retired by an operator")
        DELETE = "delete", _("Deleted by an operator")

    # No single-column indexes on tenant and computer: the composite indexes below start with them, and
    # every index costs each state change of a row (the delivery updates 100,000s of rows an hour).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="compliance_reports", db_index=False
    )
    computer = models.ForeignKey(
        "devices.Computer", on_delete=models.CASCADE, related_name="compliance_reports", db_index=False
    )
    user_account = models.ForeignKey(
        "devices.UserAccount", on_delete=models.SET_NULL, null=True, blank=True, related_name="compliance_reports"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REPORT)
    reason = models.CharField(max_length=8, choices=Reason.choices, default=Reason.NEW)
    # Copied from the pair when the report was made: the history stays readable after the user is gone.
    username = models.CharField(max_length=255, blank=True)
    entra_device_id = models.CharField(_("Entra device ID"), max_length=64, blank=True)
    entra_user_id = models.CharField(_("Entra user ID"), max_length=64, blank=True)
    inventory_state = models.SmallIntegerField(choices=InventoryState.choices, null=True, blank=True)
    compliance_status = models.CharField(max_length=16, choices=ComplianceStatus.choices, blank=True)
    payload = models.JSONField(default=list, blank=True, help_text=_("The entities exactly as sent."))
    payload_hash = models.CharField(max_length=64, blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    latest = models.BooleanField(default=True, help_text=_("The newest report of its computer and user."))
    message_id = models.UUIDField(_("message ID"), null=True, blank=True)
    batched_at = models.DateTimeField(null=True, blank=True, help_text=_("The message's UploadTime."))
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_detail = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True, help_text=_("The operator, for admin actions."))

    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text=_("When Intune accepted the message."))
    finished_at = models.DateTimeField(null=True, blank=True, help_text=_("Completed, failed or superseded."))
    updated_at = models.DateTimeField(auto_now=True)

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        verbose_name = _("compliance report")
        verbose_name_plural = _("compliance reports")
        ordering = ["-id"]
        indexes = [
            # The reports of a message (every query gives the ID); the outbox itself is OutboxMessage. Only reports
            # with a message are indexed: deletions from Entra ID and Intune have none.
            models.Index(fields=["message_id"], name="report_message", condition=models.Q(message_id__isnull=False)),
            models.Index(fields=["computer", "-id"], name="report_history"),
            models.Index(fields=["tenant", "-id"], name="report_tenant"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user_account"], condition=models.Q(latest=True), name="report_one_latest_per_pair"
            ),
        ]

    def __str__(self):
        return "%s %s/%s %s" % (self.get_kind_display(), self.computer_id, self.username or "-", self.status)


class OutboxMessage(models.Model):
    """A DataUploadMessage of the outbox: the reports sharing its ``message_id``, and where their delivery stands.

    ``queue_reports`` makes the messages with their reports (so a message's ID and UploadTime are fixed when its
    reports are made); the delivery claims a message, PUTs its pending reports, and records the answer, so a
    report's own row is written when it is made and when Intune answers, and nothing in between. The rows live
    only while there is work: a message whose reports are all finished is deleted (the reports keep its ID).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # waiting for next_attempt_at, or in flight while lease_expires_at
        ACCEPTED = "accepted", _("Accepted by Intune")  # Intune's verdict not read back yet

    id = models.UUIDField(_("message ID"), primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="outbox_messages", db_index=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    upload_time = models.DateTimeField(help_text=_("The message's UploadTime."))
    # Claimed at least once: it may have reached Intune, so its reports stay together under its ID.
    claimed = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text=_("When Intune accepted the message."))

    objects = scoped_queryset("tenant").as_manager()

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            # The outbox: a tenant's due messages that no worker holds, oldest first.
            models.Index(
                fields=["tenant", "next_attempt_at", "id"], name="message_outbox",
                condition=models.Q(status="pending", lease_expires_at__isnull=True),
            ),
            models.Index(fields=["tenant", "status", "sent_at"], name="message_tenant_status"),
        ]

    def __str__(self):
        return "%s %s" % (self.id, self.status)
