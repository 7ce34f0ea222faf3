"""Test a tenant's connection to Entra ID and Intune, step by step, as Jamf Pro's Test button does.

``test_connection(tenant)`` runs the steps in order (settings, tenant found, Graph token, Intune
token, discovery, provisioning state); the first failure stops the run and the later steps are
reported as skipped. Each step says pass or fail in one plain sentence, with what to do and the raw
detail for support. The result is stored on the tenant (last_test_at / _ok / _message).
"""

import datetime
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.intune.client import IntuneClient
from compliance.intune.clouds import get_cloud
from compliance.intune.errors import explain, scrub
from portal import audit

STEPS = [
    ("settings", "Settings"),
    ("tenant", "Tenant found"),
    ("graph_token", "Graph token"),
    ("intune_token", "Intune token"),
    ("discovery", "Service discovery"),
    ("provisioning", "Provisioning state"),
]
# Fields of the tenant whose change re-runs the test when saved in the admin.
CONNECTION_FIELDS = ("cloud", "entra_tenant", "client_id", "intune_enabled")


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


def admin_consent_url(tenant):
    """The link a Global Administrator of the customer opens to grant the app's permissions."""
    if not tenant.client_id:
        return ""
    redirect = settings.PORTAL_BASE_URL.rstrip("/") + "/admin/"
    return get_cloud(tenant.cloud).admin_consent_url(tenant.entra_tenant, tenant.client_id, redirect)


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
    try:
        client = IntuneClient.from_tenant(tenant, max_retries=1, max_retry_wait=5, timeout=(5, 15))
        secrets = tenant.client_secrets.filter(expires_at__gt=timezone.now()).order_by("-expires_at")
        newest = secrets.values_list("expires_at", flat=True).first()
        passed(
            "settings",
            _("Entra tenant %(tenant)s, application %(app)s, %(count)d unexpired client secret(s), the latest "
              "expiring on %(date)s.")
            % {"tenant": tenant.entra_tenant, "app": tenant.client_id, "count": secrets.count(),
               "date": newest.date().isoformat()},
        )
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
    if not tenant.client_id:
        return ""
    now = now or timezone.now()
    warn_days = warn_days or max(getattr(settings, "SECRET_EXPIRY_WARNING_DAYS", (30, 14, 7, 1)))
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
