"""Admin consent for a customer tenant: the link with a signed, expiring, single-use ``state``, and the callback.

Design §6a: ``https://<login host>/<tenant>/adminconsent?client_id=<app>&state=<signed>&redirect_uri=<portal
callback>``. Entra ID redirects the browser back with ``tenant``, ``admin_consent=True`` and ``state``, or with
``error`` and ``error_description`` (Microsoft identity platform, "Admin consent on the Microsoft identity
platform"). The state is signed with the portal's SECRET_KEY (``django.core.signing``), names the tenant and
the user who issued the link, expires after CONSENT_STATE_MAX_AGE seconds, and is accepted once: its nonce
is recorded (``portal.models.ConsentStateUse``, unique), so a replay is refused.
"""

import re
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from compliance.intune.clouds import get_cloud
from portal import audit
from portal.models import GUID_RE, ConsentStateUse, Tenant
from portal.partner import partner_application

SALT = "portal.consent.state"

# Entra answers on the consent redirect, by AADSTS code: (what happened, what to do). Codes from Microsoft's
# Entra error-code reference.
CONSENT_ERRORS = {
    65004: (
        _lazy("The administrator declined to consent to the application."),
        _lazy("Open the consent link again and choose Accept; the portal cannot reach the tenant until consent is "
          "granted."),
    ),
    50011: (
        _lazy("Entra ID refused the portal's redirect URI: it is not registered on the application."),
        _lazy("In the MSP's app registration (Authentication › Web › Redirect URIs) add this portal's callback URL "
          "exactly as shown in docs/connect-a-tenant.md, then open the consent link again."),
    ),
    500113: (
        _lazy("The application has no redirect URI registered."),
        _lazy("In the MSP's app registration (Authentication › Web › Redirect URIs) add this portal's callback URL, "
          "then open the consent link again."),
    ),
    90002: (
        _lazy("Entra ID does not know this tenant."),
        _lazy("Check the tenant's domain or ID and its cloud on the tenant page, then open the consent link again."),
    ),
    700016: (
        _lazy("Entra ID does not know the application."),
        _lazy("Check the partner application's client ID (Partner application in the admin); it must be a "
          "multi-tenant app registration."),
    ),
    50020: (
        _lazy("The account that signed in does not belong to this tenant."),
        _lazy("Sign in with a Global Administrator (or Privileged Role Administrator) account of the customer's "
          "tenant, for example in a private browser window, and open the consent link again."),
    ),
    90094: (
        _lazy("The account that signed in may not grant consent for the organisation."),
        _lazy("A Global Administrator or Privileged Role Administrator of the customer's tenant must open the link."),
    ),
    90008: (
        _lazy("The account that signed in may not grant consent for the organisation."),
        _lazy("A Global Administrator or Privileged Role Administrator of the customer's tenant must open the link."),
    ),
}


@dataclass
class ConsentOutcome:
    """What the callback found: ``ok``, a title and sentence for people, what to do, and the tenant if known."""

    ok: bool
    title: str
    message: str
    advice: str = ""
    tenant: Tenant | None = None
    status: int = 200
    detail: str = ""


def application_for(tenant):
    """(client ID, display name) of the app a tenant consents to: its own in legacy/override, else the partner's."""
    if tenant.uses_own_app:
        return tenant.client_id, ""
    partner = partner_application()
    if partner is None:
        return "", ""
    return partner.client_id, partner.display_name


def callback_url():
    """The redirect URI registered on the app: the portal's consent callback."""
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("entra-consent-callback")


def make_state(tenant, user=None):
    payload = {"t": tenant.pk, "n": secrets.token_urlsafe(16)}
    if user is not None and getattr(user, "is_authenticated", False):
        payload["u"] = user.get_username()
    return signing.dumps(payload, salt=SALT, compress=True)


def admin_consent_url(tenant, user=None):
    """The link a Global Administrator of the customer opens to grant the app's permissions ('' when it cannot
    be built yet: no Entra tenant, or no application)."""
    client_id, _name = application_for(tenant)
    if not (tenant.entra_tenant and client_id):
        return ""
    return get_cloud(tenant.cloud).admin_consent_url(
        tenant.entra_tenant, client_id, callback_url(), state=make_state(tenant, user)
    )


def _aadsts(description):
    match = re.search(r"AADSTS(\d+)", description or "")
    return int(match.group(1)) if match else None


def handle_callback(params, now=None):
    """Check the state and record the answer of Entra's consent redirect (``params``: the query string)."""
    now = now or timezone.now()
    state = params.get("state") or ""
    if not state:
        return ConsentOutcome(False, _("The consent answer is incomplete"), _(
            "Entra ID sent no state back, so the portal cannot tell which tenant this is about."), _(
            "Open Grant admin consent from the tenant's page in the portal, not a saved or edited link."), status=400)
    try:
        payload = signing.loads(state, salt=SALT, max_age=settings.CONSENT_STATE_MAX_AGE)
    except signing.SignatureExpired:
        return ConsentOutcome(False, _("The consent link has expired"), _(
            "This consent link is older than the portal accepts."), _(
            "Open Grant admin consent from the tenant's page again for a fresh link."), status=400)
    except signing.BadSignature:
        return ConsentOutcome(False, _("The consent answer was not issued by this portal"), _(
            "The state Entra ID sent back does not carry this portal's signature: the link was changed or made "
            "elsewhere."), _("Open Grant admin consent from the tenant's page in the portal."), status=400)
    tenant = Tenant.objects.filter(pk=payload.get("t")).first()
    if tenant is None:
        return ConsentOutcome(False, _("The tenant no longer exists"), _(
            "The consent link names a tenant that has been deleted from the portal."), status=400)
    try:
        with transaction.atomic():
            ConsentStateUse.objects.create(nonce=str(payload.get("n", ""))[:64], tenant=tenant)
    except IntegrityError:
        return ConsentOutcome(False, _("This consent answer was already used"), _(
            "Each consent link works once; this answer has been received before."), _(
            "If consent is still missing, open Grant admin consent from the tenant's page again."), tenant,
            status=400)

    error = params.get("error")
    if error:
        description = params.get("error_description") or ""
        code = _aadsts(description)
        message, advice = (str(text) for text in CONSENT_ERRORS.get(code, (
            _("Entra ID did not grant consent (%(error)s).") % {"error": error},
            _("Read the detail below, fix what it names, and open the consent link again."),
        )))
        audit.record("admin_consent_refused", tenant, details={
            "error": error[:100], "code": code or "", "link_issued_by": str(payload.get("u", ""))[:150]})
        return ConsentOutcome(False, _("Consent was not granted"), message, advice, tenant,
                              detail="%s: %s" % (error, description[:500]))

    granted_in = (params.get("tenant") or "").strip().lower()
    if str(params.get("admin_consent", "")).lower() != "true" or not GUID_RE.match(granted_in):
        return ConsentOutcome(False, _("The consent answer is incomplete"), _(
            "Entra ID did not confirm admin consent for a tenant."), _(
            "Open Grant admin consent from the tenant's page again."), tenant, status=400)
    expected = tenant.entra_tenant_id and str(tenant.entra_tenant_id).lower()
    if not expected and GUID_RE.match(tenant.entra_tenant or ""):
        expected = tenant.entra_tenant.lower()
    if expected and expected != granted_in:
        return ConsentOutcome(False, _("Consent was granted in another tenant"), _(
            "The administrator consented in tenant %(got)s, but this portal tenant is %(want)s.") % {
            "got": granted_in, "want": expected}, _(
            "Sign in with an administrator of the customer's own tenant (a private browser window helps) and open "
            "the consent link again; or correct the Entra tenant on the tenant page."), tenant)
    before = tenant.entra_tenant_id
    Tenant.objects.filter(pk=tenant.pk).update(
        entra_tenant_id=uuid.UUID(granted_in), consent_granted_at=now,
        consent_granted_by=str(payload.get("u", ""))[:150],
    )
    tenant.refresh_from_db()
    # Not a save (no auditlog signal), and the customer's administrator who consented may have no portal account:
    # the entry names the Entra tenant, the portal user who issued the link, and the address the answer came from.
    audit.record("admin_consent", tenant, changes={"entra_tenant_id": [str(before or ""), granted_in]}, details={
        "granted_in": granted_in, "link_issued_by": tenant.consent_granted_by})
    return ConsentOutcome(True, _("Admin consent granted"), _(
        "Entra ID confirmed admin consent for %(tenant)s (tenant ID %(tid)s).") % {
        "tenant": tenant.name, "tid": granted_in}, _(
        "Test connection on the tenant's page, then Provision."), tenant)
