"""Every failure talking to Microsoft, explained: a code, one plain sentence, what to do, and the raw detail.

The AADSTS codes and their meaning come from Microsoft's Entra error-code reference (design §6).
Nothing here ever holds a client secret: details are built from Microsoft's answers, URLs and
exception types, and the client scrubs its own secrets from them (``scrub``) before raising.
"""

import json
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.utils.translation import gettext_lazy as _

from portal.http import parse_retry_after

# AADSTS code -> (our code, what happened, what to do). Entra error codes: design §6.
AADSTS = {
    7000215: (
        "invalid_secret",
        _("Entra ID rejected the client secret."),
        _(
            "Enter the secret's Value (shown once when it was created), not its Secret ID; "
            "or add a new secret under App registrations › Certificates & secrets."
        ),
    ),
    7000222: (
        "secret_expired",
        _("The client secret has expired."),
        _("Add a new client secret to the app registration in Entra ID and enter its Value and expiry date here."),
    ),
    700016: (
        "app_not_found",
        _("The application was not found in this tenant."),
        _(
            "Check the Application (client) ID, and that a Global Administrator of this tenant granted admin "
            "consent (the Grant admin consent button)."
        ),
    ),
    700027: (
        "certificate_unknown",
        _("Entra ID could not validate the portal's certificate: it is not registered on the application, or "
          "the signature does not match it."),
        _(
            "Download the certificate (.cer) from the Partner application page and upload it to the app "
            "registration in Entra ID (Certificates & secrets › Certificates); a new certificate may take a few "
            "minutes to be accepted."
        ),
    ),
    700024: (
        "assertion_invalid",
        _("Entra ID refused the signed client assertion: it is expired or not yet valid."),
        _("Check this server's clock (NTP): the assertion is valid for a few minutes around Entra's time."),
    ),
    90002: (
        "tenant_not_found",
        _("Entra ID does not know this tenant."),
        _(
            "Check the tenant's domain or ID, and the cloud: a GCC High or 21Vianet tenant is not found in the "
            "global cloud, nor the other way round."
        ),
    ),
    900023: (
        "tenant_not_found",
        _("The tenant name or ID is not valid."),
        _("Enter the tenant's domain (contoso.onmicrosoft.com) or its tenant ID (a GUID)."),
    ),
    65001: (
        "consent_missing",
        _("Admin consent has not been granted to the application."),
        _("Have a Global Administrator of the tenant open the admin consent link (Grant admin consent) and accept."),
    ),
    90094: (
        "consent_missing",
        _("The application needs an administrator's consent."),
        _("Have a Global Administrator of the tenant open the admin consent link (Grant admin consent) and accept."),
    ),
    500011: (
        "no_intune_licence",
        _("The Intune service is not available in this tenant."),
        _("Make sure the tenant has an Intune licence and that Intune is set up, then test again."),
    ),
}

# Our codes for failures that are not AADSTS answers: (what happened, what to do).
PROBLEMS = {
    "not_configured": (
        _("The Entra tenant or the application (client) ID is not set."),
        _("Fill in the Entra tenant and the Application (client) ID of the app registration."),
    ),
    "no_secret": (
        _("No unexpired client secret is set."),
        _("Add a client secret (its Value and its expiry date) under Client secrets."),
    ),
    "no_partner_app": (
        _("The MSP's partner application is not set up, or has no valid credential."),
        _(
            "A superuser or MSP admin sets it up under Partner application: its application (client) ID and a "
            "certificate or client secret (docs/connect-a-tenant.md, part 1)."
        ),
    ),
    "partners_denied": (
        _("Microsoft Graph refused to list the tenant's compliance partners."),
        _(
            "Give the application the Microsoft Graph application permission DeviceManagementServiceConfig.Read.All "
            "and have the customer grant admin consent again (Grant admin consent)."
        ),
    ),
    "partner_missing": (
        _("This partner is not added in the tenant's Intune."),
        _(
            "In the Intune admin center: Tenant administration › Connectors and tokens › Partner compliance "
            "management › Add compliance partner, pick this partner, platform macOS, and assign the user groups."
        ),
    ),
    "partner_not_onboarded": (
        _("The partner is added in Intune, but not for macOS."),
        _(
            "In the Intune admin center: Tenant administration › Connectors and tokens › Partner compliance "
            "management › this partner › Properties: add the macOS platform and assign the user groups."
        ),
    ),
    "partner_no_groups": (
        _("The partner is on for macOS, but no user group is assigned."),
        _(
            "In the Intune admin center: Tenant administration › Connectors and tokens › Partner compliance "
            "management › this partner › Properties › Assignments: add the groups of Mac users."
        ),
    ),
    "partner_state": (
        _("Intune does not report the partner as enabled."),
        _(
            "In the Intune admin center: Tenant administration › Connectors and tokens › Partner compliance "
            "management: check the partner's state; provision it from the portal (Provision) and let a sync run, "
            "then test again. Terminated or rejected: remove the partner and add it again."
        ),
    ),
    "discovery_denied": (
        _("Microsoft Graph refused to list the Intune service endpoints."),
        _(
            "Give the app the Microsoft Graph application permission Application.Read.All and grant admin "
            "consent again."
        ),
    ),
    "intune_not_found": (
        _("The Intune service principal is not in this tenant."),
        _("Make sure the tenant has an Intune licence and that Intune is set up, then test again."),
    ),
    "endpoints_missing": (
        _("Intune did not offer the partner compliance services to this tenant."),
        _(
            "In the Intune admin center, add the partner compliance connector for this application "
            "(Tenant administration › Connectors and tokens › Partner compliance management)."
        ),
    ),
    "provisioning_refused": (
        _("Intune refused to provision the partner integration."),
        _(
            "Enable the partner compliance connector in Intune with this Application ID, and give the app the "
            "Intune permission update_device_attributes with admin consent."
        ),
    ),
    "intune_forbidden": (
        _("Intune refused the request."),
        _("Give the app the Intune permission update_device_attributes and grant admin consent again."),
    ),
    "graph_forbidden": (
        _("Microsoft Graph refused the request."),
        _("Give the app the Graph permission the action needs (see docs/connect-a-tenant.md) and grant consent."),
    ),
    "unauthorized": (
        _("Microsoft rejected the access token, also a freshly issued one."),
        _("Test again in a minute; if it persists, check the app's permissions and admin consent."),
    ),
    "throttled": (
        _("Microsoft asked the portal to slow down (HTTP 429)."),
        _("The portal waits and retries on its own; nothing to do unless it persists."),
    ),
    "server_error": (
        _("Microsoft's service answered with a server error."),
        _("The portal retries on its own; if it persists, check the Microsoft 365 service health."),
    ),
    "bad_request": (
        _("Intune rejected the request as invalid."),
        _("This is a portal problem rather than a setting: send the detail below to support."),
    ),
    "too_large": (
        _("Intune refused the message as too large (HTTP 413)."),
        _(
            "The portal splits a refused message into smaller ones; a single report that is still too large is "
            "not sent: send the detail below to support."
        ),
    ),
    "not_found": (
        _("Microsoft answered that the resource does not exist."),
        _("Test the connection again; if it persists, send the detail below to support."),
    ),
    "dns": (
        _("The server name could not be resolved (DNS)."),
        _("Check this server's DNS, and that it may reach the cloud's login, Graph and *.manage hosts."),
    ),
    "tls": (
        _("The secure (TLS) connection failed: the server's certificate was not trusted."),
        _("If a proxy inspects TLS, add its CA to PORTAL_CA_BUNDLE; also check this server's clock."),
    ),
    "timeout": (
        _("The connection timed out."),
        _(
            "Check that the firewall allows outbound HTTPS (443) to the cloud's login, Graph and *.manage hosts; "
            "Microsoft may also be slow: test again."
        ),
    ),
    "connection": (
        _("The connection failed or was dropped."),
        _(
            "Check that the firewall allows outbound HTTPS (443) to the cloud's login, Graph and *.manage hosts, "
            "then test again."
        ),
    ),
    "entra_error": (
        _("Entra ID refused to issue a token."),
        _("Read the detail below; the docs list the usual causes (docs/connect-a-tenant.md)."),
    ),
    "unexpected": (
        _("An unexpected error occurred."),
        _("Send the detail below to support."),
    ),
}

RETRYABLE_CODES = {"throttled", "server_error", "timeout", "connection"}


@dataclass
class Problem:
    """A failure explained for people: ``code``, one sentence, what to do, and detail for support."""

    code: str
    message: str
    advice: str
    detail: str = ""
    status: int | None = None
    retry_after: float | None = None
    aadsts: int | None = None

    @property
    def retryable(self):
        return self.code in RETRYABLE_CODES

    def __str__(self):
        return "%s %s" % (self.message, self.advice)


class IntuneError(Exception):
    """Raised by the Intune client; ``problem`` says what happened and what to do."""

    def __init__(self, problem):
        self.problem = problem
        super().__init__(str(problem))

    code = property(lambda self: self.problem.code)
    status = property(lambda self: self.problem.status)
    retryable = property(lambda self: self.problem.retryable)
    retry_after = property(lambda self: self.problem.retry_after)
    detail = property(lambda self: self.problem.detail)

    def run_error(self):
        """What a failed SyncRun stores (portal.runs): the message, the advice and the scrubbed detail."""
        return "%s %s\n%s" % (self.problem.message, self.problem.advice, self.problem.detail)


def problem(code, detail="", **extra):
    message, advice = PROBLEMS[code]
    return Problem(code, str(message), str(advice), _clip(detail), **extra)


def scrub(text, secrets):
    """``text`` with every one of ``secrets`` replaced, so no secret reaches a message or a log."""
    text = str(text or "")
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[secret]")
    return text


def _clip(text, limit=2000):
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def from_entra(body, status=None):
    """A Problem from an Entra error answer (msal's result dict or the JSON body of an HTTP answer)."""
    body = body if isinstance(body, dict) else {}
    codes = body.get("error_codes") or []
    description = body.get("error_description") or ""
    if not codes:
        match = re.search(r"AADSTS(\d+)", description)
        codes = [int(match.group(1))] if match else []
    error = body.get("error")
    detail = "; ".join(
        "%s: %s" % (key, body[key])
        for key in ("error", "error_description", "error_codes", "trace_id", "correlation_id", "timestamp")
        if body.get(key)
    ) or json.dumps(body)[:500]
    for code in codes:
        if code in AADSTS:
            ours, message, advice = AADSTS[code]
            return Problem(ours, str(message), str(advice), _clip(detail), status=status, aadsts=code)
    if isinstance(error, dict) or status == 429 or (status or 0) >= 500:
        # Not an OAuth answer: a throttle or an outage in front of the token endpoint.
        return problem("throttled" if status == 429 else "server_error", detail, status=status)
    return problem("entra_error", detail, status=status, aadsts=codes[0] if codes else None)


def from_discovery_failure(exc):
    """msal raises ValueError when the tenant's OpenID configuration cannot be read (unknown tenant)."""
    texts, seen = [], exc
    while seen is not None and len(texts) < 5:  # msal wraps the answer's text in a second ValueError
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = " | ".join(reversed(texts))
    start = text.find("{")
    if start >= 0:
        try:
            body, _end = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict):
            return from_entra(body, status=400)
    if "OIDC Discovery failed" in text or "Unable to get authority configuration" in text:
        message, advice = AADSTS[90002][1:]
        return Problem("tenant_not_found", str(message), str(advice), _clip(text), aadsts=90002)
    return problem("unexpected", "%s: %s" % (type(exc).__name__, text))


def from_response(response, service, code=None):
    """A Problem for an HTTP error answer from Graph or Intune; ``code`` overrides the status mapping."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        detail = "%s %s: %s" % (status, err.get("code", ""), err.get("message", ""))
    elif isinstance(body, dict) and ("Message" in body or "message" in body):
        detail = "%s: %s" % (status, body.get("Message") or body.get("message"))
    else:
        detail = "%s: %s" % (status, (response.text or "")[:500])
    detail = "%s %s → %s" % (response.request.method if response.request else "", _path(response.url), detail)
    if code is None:
        if status == 429:
            code = "throttled"
        elif status >= 500:
            code = "server_error"
        elif status == 401:
            code = "unauthorized"
        elif status == 403:
            code = "intune_forbidden" if service == "intune" else "graph_forbidden"
        elif status == 404:
            code = "not_found"
        elif status == 413:
            code = "too_large"
        else:
            code = "bad_request"
    return problem(code, detail, status=status, retry_after=parse_retry_after(response.headers.get("Retry-After")))


def from_exception(exc, url=""):
    """A Problem for a network failure (DNS, TLS, timeout, dropped connection) or anything else."""
    where = _path(url) if url else ""
    text = "%s%s: %s" % (where + " → " if where else "", type(exc).__name__, exc)
    if isinstance(exc, IntuneError):
        return exc.problem
    if isinstance(exc, requests.exceptions.SSLError) or _caused_by(exc, ssl.SSLError):
        return problem("tls", text)
    if isinstance(exc, requests.exceptions.Timeout) or _caused_by(exc, TimeoutError, socket.timeout):
        return problem("timeout", text)
    if _caused_by(exc, socket.gaierror) or "NameResolutionError" in text or "Name or service not known" in text:
        return problem("dns", text)
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        return problem("connection", text)
    return problem("unexpected", text)


def explain(exc):
    """The Problem behind any exception raised while talking to Microsoft."""
    if isinstance(exc, IntuneError):
        return exc.problem
    return from_exception(exc)


def _caused_by(exc, *types):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, types):
            return True
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, BaseException) and _caused_by(arg, *types):
                return True
            reason = getattr(arg, "reason", None)
            if isinstance(reason, BaseException) and _caused_by(reason, *types):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def _path(url):
    parts = urlsplit(url or "")
    return "%s://%s%s" % (parts.scheme, parts.netloc, parts.path) if parts.netloc else url
