"""Test a tenant's connection to Entra ID and Intune, step by step, as Jamf Pro's Test button does.

``test_connection(tenant)`` runs the steps in order (settings, tenant found, Graph token, Intune
token, discovery, the Intune compliance partner, provisioning state); the first failure stops the run and
the later steps are reported as skipped. A tenant in partner mode uses the MSP's partner application
(design §6a); the legacy inventory mode and an override use the tenant's own app.
Each step says pass or fail in one plain sentence, with what to do and the raw
detail for support. The result is stored on the tenant (last_test_at / _ok / _message).
"""

import datetime
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance import consent
from compliance.intune.client import IntuneClient
from compliance.intune.errors import IntuneError, explain, problem, scrub
from portal import audit
from portal.partner import partner_application

STEPS = [
    ("settings", "Settings"),
    ("tenant", "Tenant found"),
    ("graph_token", "Graph token"),
    ("intune_token", "Intune token"),
    ("discovery", "Service discovery"),
    ("intune_partner", "Intune compliance partner"),
    ("provisioning", "Provisioning state"),
]
# Fields of the tenant whose change re-runs the test when saved in the admin.
CONNECTION_FIELDS = ("cloud", "entra_tenant", "client_id", "use_own_app", "reporting_mode", "intune_enabled")


@dataclass
class Step:
    key: str
    name: str
    ok: bool | None  # None: skipped
    message: str
    advice: str = ""
    detail: str = ""
    code: str = ""

    @property
    def symbol(self):
        return {True: "✓", False: "✗", None: "–"}[self.ok]

    def line(self):
        text = "%s %s: %s" % (self.symbol, self.name, self.message)
        if self.advice:
            text += " %s %s" % (_("What to do:"), self.advice)
        return text


@dataclass
class ConnectionResult:
    tenant_slug: str
    ok: bool
    steps: list = field(default_factory=list)
    tested_at: datetime.datetime | None = None

    @property
    def failed_step(self):
        return next((s for s in self.steps if s.ok is False), None)

    def summary(self):
        """The text stored on the tenant: one line per step."""
        return "\n".join(step.line() for step in self.steps)

    def as_dict(self):
        return {"tenant": self.tenant_slug, "ok": self.ok, "tested_at": self.tested_at, "steps": [
            asdict(s) for s in self.steps]}


def admin_consent_url(tenant, user=None):
    """The link a Global Administrator of the customer opens to grant the app's permissions (compliance/consent.py)."""
    return consent.admin_consent_url(tenant, user)


def test_connection(tenant, save=True):
    """Run every step for ``tenant``; store and return a ConnectionResult."""
    steps = []
    names = dict(STEPS)

    def passed(key, message):
        steps.append(Step(key, names[key], True, message))

    def failed(key, exc):
        prob = explain(exc)
        detail = scrub(prob.detail, client._secrets if client else ())  # never a secret, even from a bug
        steps.append(Step(key, names[key], False, prob.message, prob.advice, detail, prob.code))

    client = None
    partner = None if tenant.uses_own_app and tenant.reporting_mode == "inventory" else partner_application()
    try:
        client = IntuneClient.from_tenant(tenant, partner=partner, max_retries=1, max_retry_wait=5,
                                          timeout=(5, 15))
        passed("settings", _settings_message(tenant, partner))
        tid = client.check_tenant()
        passed("tenant", _("Entra ID knows the tenant (ID %(tid)s) in the %(cloud)s cloud.")
               % {"tid": tid, "cloud": tenant.get_cloud_display()})
        client.token("graph", fresh=True)
        passed("graph_token", _("Entra ID issued an app-only token for Microsoft Graph."))
        client.token("intune", fresh=True)
        passed("intune_token", _("Entra ID issued an app-only token for the Intune API."))
        endpoints = client.endpoints()
        passed(
            "discovery",
            _("Found the partner services on %(hosts)s.")
            % {"hosts": ", ".join(sorted({urlsplit(endpoints.tenant_sync).netloc,
                                          urlsplit(endpoints.device_sync).netloc}))},
        )
        passed("intune_partner", check_compliance_partner(client, tenant, partner, save=save))
        state = client.provisioning_state()
        passed("provisioning", _provisioning_message(tenant, state))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a step with advice
        failed(STEPS[len(steps)][0], exc)
    for key, name in STEPS[len(steps):]:
        steps.append(Step(key, name, None, _("Skipped: an earlier step failed.")))
    result = ConnectionResult(tenant.slug, all(s.ok for s in steps), steps, timezone.now())
    if save:
        from portal.models import Tenant

        Tenant.objects.filter(pk=tenant.pk).update(
            last_test_at=result.tested_at, last_test_ok=result.ok, last_test_message=result.summary()
        )
        tenant.last_test_at, tenant.last_test_ok, tenant.last_test_message = (
            result.tested_at, result.ok, result.summary()
        )
        failed = result.failed_step
        audit.record("test_connection", tenant, details={
            "ok": result.ok, "failed_step": failed.key if failed else "",
        })
    return result


test_connection.__test__ = False  # not a pytest test, whatever imports it


def _settings_message(tenant, partner):
    if tenant.uses_own_app:
        secrets = tenant.client_secrets.filter(expires_at__gt=timezone.now()).order_by("-expires_at")
        newest = secrets.values_list("expires_at", flat=True).first()
        return _(
            "Entra tenant %(tenant)s, the tenant's own application %(app)s (%(why)s), %(count)d unexpired client "
            "secret(s), the latest expiring on %(date)s."
        ) % {"tenant": tenant.entra_tenant, "app": tenant.client_id, "count": secrets.count(),
             "date": newest.date().isoformat(),
             "why": _("legacy inventory mode") if tenant.reporting_mode == "inventory" else _("override")}
    valid = partner.valid_credentials()
    kinds = ", ".join(
        _("certificate %(thumbprint)s") % {"thumbprint": c.thumbprint} if c.kind == "certificate"
        else _("client secret")
        for c in valid
    )
    last = partner.last_expiry()
    text = _("Entra tenant %(tenant)s, the partner application %(name)s (%(app)s) with %(kinds)s") % {
        "tenant": tenant.entra_tenant, "name": partner.display_name or "-", "app": partner.client_id, "kinds": kinds}
    if last:
        text += " " + _("(the last valid one expires on %(date)s)") % {"date": last.date().isoformat()}
    text += "."
    if tenant.consent_granted_at:
        text += " " + _("Admin consent granted on %(date)s.") % {"date": tenant.consent_granted_at.date().isoformat()}
    return text


def partner_summary(partners, display_name, now=None):
    """What Intune says about our partner: the complianceManagementPartner whose displayName is ours, as a dict."""
    now = now or timezone.now()
    wanted = (display_name or "").strip().lower()
    found = next((p for p in partners if str(p.get("displayName") or "").strip().lower() == wanted), None)
    summary = {"checked_at": now.isoformat(), "display_name": display_name, "found": found is not None,
               "listed": sorted(str(p.get("displayName") or "") for p in partners)}
    if found is not None:
        groups = [
            (a.get("target") or {}).get("groupId") for a in found.get("macOsEnrollmentAssignments") or []
        ]
        summary.update({
            "state": str(found.get("partnerState") or "unknown"),
            "macos_onboarded": bool(found.get("macOsOnboarded")),
            "groups": [g for g in groups if g],
            "last_heartbeat": found.get("lastHeartbeatDateTime") or "",
        })
    return summary


def check_compliance_partner(client, tenant, partner, save=True):
    """The Intune side: is our partner added, onboarded for macOS, enabled, with groups? Returns the message.

    Graph ``GET /v1.0/deviceManagement/complianceManagementPartners`` (application permission
    DeviceManagementServiceConfig.Read.All, per Microsoft's Graph reference). Raises IntuneError with the
    advice for each failure; the summary is stored on the tenant (``intune_partner``) either way.
    """
    from portal.models import Tenant

    if tenant.reporting_mode == "inventory":
        return _("Not checked: the legacy inventory mode uses the retired Partner device management connector.")
    if partner is None and tenant.uses_own_app:
        return _("Not checked: the tenant uses its own app registration and no partner application is set up.")
    if partner is None or not partner.display_name:
        raise IntuneError(problem("no_partner_app", "the partner application has no display name to look for"))
    summary = partner_summary(client.compliance_partners(), partner.display_name)
    if save:
        Tenant.objects.filter(pk=tenant.pk).update(intune_partner=summary)
    tenant.intune_partner = summary
    detail = _("Intune lists: %(names)s") % {"names": ", ".join(summary["listed"]) or _("no partner")}
    if not summary["found"]:
        raise IntuneError(problem("partner_missing", detail))
    if not summary["macos_onboarded"]:
        raise IntuneError(problem("partner_not_onboarded", detail))
    if summary["state"] != "enabled":
        prob = problem("partner_state", "partnerState %s, lastHeartbeatDateTime %s" % (
            summary["state"], summary["last_heartbeat"] or "-"))
        prob.message = _("Intune reports the partner as %(state)s, not enabled.") % {"state": summary["state"]}
        raise IntuneError(prob)
    if not summary["groups"]:
        raise IntuneError(problem("partner_no_groups", detail))
    return _(
        "Intune lists %(name)s for macOS: state enabled, %(count)d group(s) assigned, last heartbeat %(when)s."
    ) % {"name": partner.display_name, "count": len(summary["groups"]), "when": summary["last_heartbeat"] or "-"}


def _provisioning_message(tenant, state):
    if state == 1:
        return _("Intune has the partner integration provisioned.")
    if state == 2:
        text = _("Intune has the partner integration deprovisioned.")
        if tenant.intune_enabled:
            text += " " + _("It is enabled here, so the next sync provisions it again.")
        return text
    text = _("Intune has not been provisioned for this tenant yet.")
    if tenant.intune_enabled:
        text += " " + _("The next sync provisions it.")
    else:
        text += " " + _("Enabling the Intune integration provisions it.")
    return text


def secret_warning(tenant, now=None, warn_days=None):
    """A sentence about the tenant's client secrets when they need attention soon, else ''.

    Warns when no secret is set (for a configured tenant), when every secret has expired, and when the
    last valid one expires within ``warn_days`` (the largest of SECRET_EXPIRY_WARNING_DAYS).
    """
    if not (tenant.uses_own_app and tenant.client_id):
        return ""
    now = now or timezone.now()
    warn_days = warn_days or max(settings.SECRET_EXPIRY_WARNING_DAYS)
    expiries = [s.expires_at for s in tenant.client_secrets.all()]
    if not expiries:
        return _("%(tenant)s has no client secret: add one so the portal can reach Intune.") % {"tenant": tenant}
    valid = [e for e in expiries if e > now]
    if not valid:
        return _("Every client secret of %(tenant)s has expired: add a new one in Entra ID and here.") % {
            "tenant": tenant
        }
    last = max(valid)
    days = (last - now).days
    if days < warn_days:
        return _(
            "The last valid client secret of %(tenant)s expires on %(date)s (in %(days)d day(s)): add a new one in "
            "Entra ID (Certificates & secrets) and here before then."
        ) % {"tenant": tenant, "date": last.date().isoformat(), "days": days}
    return ""


def partner_credential_warning(partner=None, now=None, warn_days=None):
    """A sentence when the partner application's credentials need attention soon, else ''.

    Warns when none is valid and when the last valid one expires within ``warn_days`` (the largest of
    SECRET_EXPIRY_WARNING_DAYS), as ``secret_warning`` does for a tenant's own secrets.
    """
    partner = partner if partner is not None else partner_application()
    if partner is None:
        return ""
    now = now or timezone.now()
    warn_days = warn_days or max(settings.SECRET_EXPIRY_WARNING_DAYS)
    if not partner.valid_credentials(now):
        return _(
            "The partner application has no valid certificate or client secret: the portal cannot reach any "
            "customer tenant in partner mode. Add one under Partner application."
        )
    last = partner.last_expiry(now)
    if last is None:
        return ""
    days = (last - now).days
    if days < warn_days:
        return _(
            "The last valid credential of the partner application expires on %(date)s (in %(days)d day(s)): "
            "generate a new certificate (or add a secret) under Partner application, upload it to the app "
            "registration in Entra ID, and keep both until the old one expires."
        ) % {"date": last.date().isoformat(), "days": days}
    return ""
