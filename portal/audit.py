"""The audit trail (issue 13, design section 8): every change and action by a person or an API token.

Changes to the configuration people make are recorded by django-auditlog from the models' save and
delete signals: the models in :data:`AUDITED` (tenant settings and secrets, Entra client secrets,
memberships and roles, compliance policies, users, API tokens). Every secret field (an
``EncryptedTextField``, a password) is masked: the trail says "set", "rotated" or "not set", never the
value. Actions that are not a save of such a row (retire, re-send, delete from Entra ID and Intune, sync
now, provision, test connection, a new webhook secret) are recorded by :func:`record` where the person
asks for them, whatever path (admin, API, command) they take.

Machine data (computers, user accounts, inventory events, compliance reports, sync runs) is written
in bulk by the webhook intake, imports and evaluation, and is deliberately NOT audited: it is not a
person's change, and auditing it would cost every import a query per row.

Who and from where come from :mod:`portal.audit_context`.
"""

import datetime

from auditlog.registry import auditlog
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from portal import audit_context, tenancy
from portal.fields import EncryptedTextField
from portal.models import AuditEvent

MASK = "portal.audit_context.mask_secret"

#: Model -> options for ``auditlog.register`` (every EncryptedTextField is masked in addition).
AUDITED = {
    "portal.Tenant": {
        # Written by machines, not people: the last connection test, the learned tenant GUID, timestamps.
        "exclude_fields": ["last_test_at", "last_test_ok", "last_test_message", "entra_tenant_id", "created_at",
                           "updated_at", "intune_partner"],
    },
    # The MSP's partner application (no tenant: MSP staff read these); keys and secrets are masked.
    "portal.PartnerApplication": {"exclude_fields": ["created_at", "updated_at"]},
    "portal.PartnerCredential": {"exclude_fields": ["created_at"]},
    "portal.ClientSecret": {"exclude_fields": ["created_at"]},
    "portal.Membership": {},
    "compliance.CompliancePolicy": {"exclude_fields": ["created_at", "updated_at"]},
    "auth.User": {"exclude_fields": ["last_login", "date_joined"], "mask_fields": ["password"]},
    "knox.AuthToken": {"include_fields": ["token_key", "user", "expiry"]},
    # The admin saves tokens through this proxy, whose signals name the proxy: register it too.
    "portal.APIToken": {"include_fields": ["token_key", "user", "expiry"]},
}

#: Explicit actions and what they mean (docs/security.md lists them).
ACTIONS = {
    "retire": "Retired a Mac: reported to Intune as deactivated (state 1).",
    "resend": "Re-sent a Mac's current state to Intune.",
    "delete_from_entra_intune": "Deleted a Mac from Entra ID and Intune (Graph).",
    "sync_now": "Queued a sync: Jamf Pro pull, evaluation, delivery to Intune.",
    "provision": "Provisioned the tenant in Intune.",
    "deprovision": "Deprovisioned the tenant in Intune.",
    "test_connection": "Tested the Entra ID / Intune connection.",
    "generate_webhook_secret": "Generated a new Jamf webhook secret.",
    "admin_consent": "A customer's administrator granted admin consent to the partner application (Entra ID).",
    "admin_consent_refused": "Entra ID answered a consent link without consent (declined or an error).",
}


def register_models():
    """Register :data:`AUDITED` with django-auditlog, masking every secret field. Called from AppConfig.ready."""
    for label, options in AUDITED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        options = {key: list(value) for key, value in options.items()}
        secret = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        options["mask_fields"] = sorted(set(options.get("mask_fields", [])) | set(secret))
        auditlog.unregister(model)
        auditlog.register(model, mask_callable=MASK, **options)


def _target(obj):
    content_type = ContentType.objects.get_for_model(obj)
    pk = obj.pk
    return {
        "content_type": content_type,
        "object_pk": str(pk),
        "object_id": pk if isinstance(pk, int) else None,
        "object_repr": str(obj)[:500],
    }


def record(event, obj, *, tenant_id=None, changes=None, details=None):
    """Record that the current person ran the action ``event`` on ``obj``. Returns the AuditEvent.

    ``changes`` is ``{"field": [old, new]}`` (never a secret value); ``details`` is any JSON-able dict.
    The actor, API token and address come from the request being served (portal.audit_context).
    """
    if tenant_id is None:
        try:
            tenant_id = tenancy.tenant_id_of(obj)
        except TypeError:
            tenant_id = None
    return AuditEvent.objects.create(
        action=AuditEvent.Action.PERFORM, event=event, tenant_id=tenant_id, changes=changes,
        additional_data=details or None, **_target(obj),
    )


def record_many(event, objects, *, details=None):
    """:func:`record` for many rows in one insert (a bulk action on many Macs)."""
    objects = list(objects)
    if not objects:
        return []
    rows = []
    for obj in objects:
        entry = AuditEvent(
            action=AuditEvent.Action.PERFORM, event=event, tenant_id=tenancy.tenant_id_of(obj),
            additional_data=details or None, **_target(obj),
        )
        audit_context.fill(entry)  # bulk_create sends no save signal
        rows.append(entry)
    return AuditEvent.objects.bulk_create(rows, batch_size=500)


def prune(now=None):
    """Delete entries older than AUDIT_RETENTION_DAYS (0 keeps every entry). Returns how many."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    deleted = 0
    while True:  # in slices, so the delete never holds a long lock
        ids = list(AuditEvent.objects.filter(timestamp__lt=cutoff).values_list("id", flat=True)[:5000])
        if not ids:
            return deleted
        deleted += AuditEvent.objects.filter(id__in=ids).delete()[0]
