"""Entra ID, Microsoft Graph and the Intune partner service, simulated on the simulator's one port.

Entra ID sits at the root (msal takes the first path segment of the authority as the tenant):

- ``GET  /<tenant>/v2.0/.well-known/openid-configuration``  (400 AADSTS90002 for an unknown tenant)
- ``GET  /common/discovery/instance``                        (instance discovery, as msal asks it)
- ``POST /<tenant>/oauth2/v2.0/token``                       (client credentials with a secret or a
  certificate's signed client assertion; AADSTS 7000215, 7000222, 700016, 700027, 700024, 90002, 65001,
  500011 in Entra's JSON shape)
- ``GET  /<tenant>/adminconsent``                            (grants consent, redirects back with
  ``tenant``, ``admin_consent`` and ``state``, or ``error`` and ``error_description``)

Multi-tenant (partner) applications live outside any tenant (``register_app``): their secrets and
certificates, display name and permissions. A tenant knows one once it consented (admin consent, or
``register(..., consent_to=[client id])``). A certificate's client assertion is checked as Microsoft's
"certificate credentials" page describes: the signature against the uploaded certificate found by the
``x5t`` (SHA-1) or ``x5t#S256`` header, ``aud`` = the token endpoint, ``iss`` = ``sub`` = the client ID,
``exp`` (AADSTS700024 when past), a ``jti`` never seen before.

Graph under ``/graph/v1.0``: ``servicePrincipals?$filter=appId eq '…'``, ``servicePrincipals/{id}/endpoints``,
``DELETE devices(deviceId='…')``, ``deviceManagement/managedDevices`` (GET, paged; DELETE one),
``deviceManagement/complianceManagementPartners`` (GET; needs DeviceManagementServiceConfig.Read.All): every
registered partner app as the tenant's Intune lists it, shaped by the ``compliance_partner`` knob.

The Intune partner service under ``/intune/PartnerTenantDataSyncService`` (PartnerTenants,
PartnerCompliancePolicies with 409 on a repeated name or a second partner-managed macOS policy, Assign) and
``/intune/PartnerDeviceDataSyncService`` (DataUploadMessages PUT and GET; 413 over ``max_upload_bytes``).
Uploads are validated as design §6 describes and answered 400 with the reason otherwise; one message ID is
applied once; what arrived is kept per tenant, device and user.

Tenants, apps and secrets come from ``register()`` (tests, the control endpoint) or, for the demo,
from the portal's database (``manage.py runsimulator``; seeds survive ``reset()``).

Service-specific fault knobs (``sim.set_faults(...)`` or ``POST /_sim/faults``):

- ``reject_fresh_tokens``: N — the next N tokens are answered 401 on their first use
- ``token_lifetime``: seconds a new token lives (``expires_in``; default 3599)
- ``token_valid_for``: seconds after which a new token is refused although ``expires_in`` says more
- ``expire_secrets``: tenant names or IDs whose secrets all answer AADSTS7000222
- ``fail_tokens``: N — the next N token requests answer ``fail_tokens_status`` (503, or 429 with ``retry_after``)
- ``throttle_uploads``: N — the next N DataUploadMessages PUTs answer 429 with ``retry_after``
- ``processing_delay``: seconds a message stays ``Processing`` before its final status
- ``answer_delay``: seconds a DataUploadMessages PUT waits after the message was applied, before answering
- ``drop_answer_rate``: share of DataUploadMessages PUTs whose connection is closed unanswered *after* the message
  was applied (``drop_rate`` drops before anything is applied)
- ``failing_devices``: {device id: "ErrorCode: detail"} — messages naming them end ``Failed``
- ``require_provisioning``: refuse uploads until the tenant is provisioned (Provisioned 1)
- ``max_upload_bytes``: DataUploadMessages PUT bodies larger than this are answered 413 (a size limit)
- ``compliance_partner``: {tenant name or ID: "missing" | "not_onboarded" | "unresponsive" | "no_groups" |
  "terminated"} — how the tenant's Intune lists the partner (default: added, macOS, enabled, one group)
- ``consent_answer``: {tenant name or ID: "declined" | "error:<AADSTS code>:<text>" | "other_tenant:<GUID>"}
  — how the admin-consent endpoint answers instead of granting

Control: ``GET|POST /_sim/microsoft/tenants``, ``POST /_sim/microsoft/apps``, ``POST /_sim/microsoft/expire-secret``,
``GET /_sim/microsoft/devices?tenant=…``, ``GET /_sim/microsoft/messages/<id>``, ``POST /_sim/microsoft/policies``
(``{"tenant", "display_name"}``: a policy an Intune admin made or renamed).
"""

import base64
import datetime
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from compliance.intune.clouds import CLOUDS, INTUNE_APP_ID
from simulator.app import SERVICE_FACTORIES
from simulator.core import DROP, HttpError, Response

TENANT_SYNC = "PartnerTenantDataSyncService"
DEVICE_SYNC = "PartnerDeviceDataSyncService"
GRAPH_RESOURCES = {c.graph_resource for c in CLOUDS.values()}
INTUNE_RESOURCES = {c.intune_resource for c in CLOUDS.values()}
DEFAULT_GRAPH_ROLES = (
    "Application.Read.All",
    "Device.ReadWrite.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
    "DeviceManagementServiceConfig.Read.All",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_INTUNE_ROLES = ("update_device_attributes",)
SEG = r"(?P<tenant>[^/_][^/]*)"  # an Entra tenant segment (not /_sim)
GUID = r"(?P<%s>[0-9a-fA-F-]{36})"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NAMESPACE = uuid.UUID("5e3c1f0a-8a57-4a43-9f5b-6b7a3c1f2d10")
MAX_ENTITIES = 10000

INVENTORY_FIELDS = (
    "TenantId", "DeviceId", "DeviceName", "UserId", "DeviceManagementState", "LastCheckInTime",
    "LastUpdateTime", "Os", "OsVersion", "EasIds", "State",
)
COMPLIANCE_FIELDS = ("TenantId", "DeviceId", "UserId", "LastUpdateTime", "complianceStatus")


def tenant_guid(name):
    """A stable tenant ID for a tenant name (the same on every simulator start)."""
    return name.lower() if GUID_RE.match(name) else str(uuid.uuid5(NAMESPACE, "tenant:" + name.lower()))


def _now():
    return datetime.datetime.now(datetime.UTC)


def _iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value):
    if not isinstance(value, str) or not value:
        raise ValueError("not a timestamp")
    when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _parse_secrets(secrets):
    parsed = []
    for item in secrets:
        if isinstance(item, dict):
            value, expires = item["value"], item.get("expires_at")
        elif isinstance(item, (tuple, list)):
            value, expires = item
        else:
            value, expires = item, None
        if isinstance(expires, str):
            expires = _parse_time(expires)
        parsed.append(SimSecret(value, expires or _now() + datetime.timedelta(days=365)))
    return parsed


def _b64url_hex(value):
    """A hex thumbprint as it appears in a JWT header (base64url of the bytes, no padding)."""
    return base64.urlsafe_b64encode(bytes.fromhex(value)).rstrip(b"=").decode()


def _b64(data):
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


@dataclass
class SimSecret:
    value: str
    expires_at: datetime.datetime
    secret_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class SimCertificate:
    pem: str
    sha1: str  # hex, lower case
    sha256: str
    public_key: object
    expires_at: datetime.datetime

    @classmethod
    def from_pem(cls, pem):
        cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        return cls(
            pem if isinstance(pem, str) else pem.decode(),
            cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - x5t is the SHA-1 thumbprint
            cert.fingerprint(hashes.SHA256()).hex(),
            cert.public_key(),
            cert.not_valid_after_utc,
        )


@dataclass
class SimPartnerApp:
    """A multi-tenant application registered in the MSP's own tenant: credentials live here, once."""

    client_id: str
    display_name: str = ""
    secrets: list = field(default_factory=list)
    certificates: list = field(default_factory=list)
    graph_roles: tuple = DEFAULT_GRAPH_ROLES
    intune_roles: tuple = DEFAULT_INTUNE_ROLES
    redirect_uris: list = field(default_factory=list)  # empty: any redirect URI is accepted


@dataclass
class SimApp:
    client_id: str
    secrets: list
    consent: bool = True
    graph_roles: tuple = DEFAULT_GRAPH_ROLES
    intune_roles: tuple = DEFAULT_INTUNE_ROLES
    partner_connector: bool = True  # the Intune admin enabled the partner compliance connector for this app


@dataclass
class SimTenant:
    id: str
    names: set
    apps: dict = field(default_factory=dict)
    intune_licensed: bool = True
    partner: dict = field(default_factory=dict)  # PartnerTenants record
    policies: dict = field(default_factory=dict)  # id -> policy (with Assignments)
    devices: dict = field(default_factory=dict)  # device id -> {user id -> {"inventory", "compliance", ...}}
    entra_devices: set = field(default_factory=set)  # device IDs registered in Entra ID
    deleted_managed: set = field(default_factory=set)  # device IDs removed from Intune
    partner_groups: list = field(default_factory=list)  # Entra group IDs assigned to compliance partners (macOS)

    @property
    def sp_id(self):
        return str(uuid.uuid5(NAMESPACE, "intune-sp:" + self.id))

    def summary(self):
        return {
            "id": self.id,
            "names": sorted(self.names),
            "apps": {
                cid: {
                    "consent": app.consent,
                    "partner_connector": app.partner_connector,
                    "secrets": [{"id": s.secret_id, "expires_at": _iso(s.expires_at)} for s in app.secrets],
                }
                for cid, app in self.apps.items()
            },
            "intune_licensed": self.intune_licensed,
            "provisioned": self.partner.get("Provisioned"),
            "policies": len(self.policies),
            "devices": len(self.devices),
        }


@dataclass
class IssuedToken:
    tenant_id: str
    client_id: str
    audience: str  # "graph" or "intune"
    roles: tuple
    expires: float
    used: bool = False


class MicrosoftService:
    """Entra ID + Graph + the Intune partner service, with a registry of tenants, apps and secrets."""

    def __init__(self):
        self.lock = threading.RLock()
        self.sim = None
        self._seeds = []
        self._clear()

    # -- registry ----------------------------------------------------------------------------

    def _clear(self):
        self.tenants = {}  # id -> SimTenant
        self.partner_apps = {}  # client id -> SimPartnerApp (multi-tenant apps)
        self.assertion_ids = {}  # jti -> digest of the client assertion that carried it
        self.names = {}  # lower-case name or id -> id
        self.tokens = {}  # access token -> IssuedToken
        self.messages = {}  # message id -> record
        self.uploads = []  # (monotonic time, message id, outcome) of every DataUploadMessages PUT handled
        self.stats = {"tokens": 0, "uploads_applied": 0, "uploads_duplicate": 0, "uploads_rejected": 0}

    def reset(self):
        with self.lock:
            self._clear()
            for kind, kwargs in self._seeds:
                (self._register_app if kind == "app" else self._register)(**kwargs)

    def register(self, name, client_id=None, secrets=(), tenant_id=None, *, seed=False, **options):
        """Add (or extend) a tenant, with an app of its own and its secrets when ``client_id`` is given.

        ``secrets``: values or (value, expires_at). Options: ``aliases`` (more names), ``consent``,
        ``graph_roles``, ``intune_roles``, ``partner_connector``, ``intune_licensed``, ``consent_to`` (client
        IDs of partner apps the tenant's admin consented to). ``seed=True`` keeps it across ``reset()``.
        """
        kwargs = dict(name=name, client_id=client_id, secrets=list(secrets), tenant_id=tenant_id, **options)
        with self.lock:
            if seed:
                self._seeds.append(("tenant", kwargs))
            return self._register(**kwargs)

    def register_app(self, client_id, display_name="", secrets=(), certificates=(), *, seed=False, **options):
        """Register a multi-tenant (partner) app with its secrets and certificates (PEM, public part only).

        Options: ``graph_roles``, ``intune_roles``, ``redirect_uris``. Registering again adds what is new.
        """
        kwargs = dict(client_id=client_id, display_name=display_name, secrets=list(secrets),
                      certificates=list(certificates), **options)
        with self.lock:
            if seed:
                self._seeds.append(("app", kwargs))
            return self._register_app(**kwargs)

    def _register_app(self, client_id, display_name="", secrets=(), certificates=(), **options):
        app = self.partner_apps.get(client_id.lower())
        if app is None:
            app = self.partner_apps[client_id.lower()] = SimPartnerApp(client_id.lower())
        if display_name:
            app.display_name = display_name
        known = {s.value for s in app.secrets}
        app.secrets.extend(s for s in _parse_secrets(secrets) if s.value not in known)
        thumbprints = {c.sha1 for c in app.certificates}
        for pem in certificates:
            cert = SimCertificate.from_pem(pem)
            if cert.sha1 not in thumbprints:
                app.certificates.append(cert)
                thumbprints.add(cert.sha1)
        for key in ("graph_roles", "intune_roles"):
            if key in options:
                setattr(app, key, tuple(options[key]))
        if "redirect_uris" in options:
            app.redirect_uris = list(options["redirect_uris"])
        return app

    def _register(self, name, client_id=None, secrets=(), tenant_id=None, aliases=(), intune_licensed=True,
                  consent_to=(), **app_options):
        tid = str(tenant_id).lower() if tenant_id else tenant_guid(name)
        tenant = self.tenants.get(tid) or SimTenant(tid, set())
        self.tenants[tid] = tenant
        tenant.intune_licensed = intune_licensed
        if not tenant.partner_groups:
            tenant.partner_groups = [str(uuid.uuid5(NAMESPACE, "group:mac-users:" + tid))]
        for alias in (name, tid, *aliases):
            tenant.names.add(alias.lower())
            self.names[alias.lower()] = tid
        for partner_id in consent_to:
            self._consent(tenant, partner_id.lower())
        if not client_id:
            return tenant
        app = tenant.apps.get(client_id.lower())
        if app is None:
            app = tenant.apps[client_id.lower()] = SimApp(client_id.lower(), [])
        known = {s.value for s in app.secrets}
        app.secrets.extend(s for s in _parse_secrets(secrets) if s.value not in known)
        for key in ("consent", "partner_connector"):
            if key in app_options:
                setattr(app, key, bool(app_options[key]))
        for key in ("graph_roles", "intune_roles"):
            if key in app_options:
                setattr(app, key, tuple(app_options[key]))
        return tenant

    def _consent(self, tenant, client_id):
        """A tenant's admin consented to a partner app: its service principal exists there."""
        app = tenant.apps.get(client_id)
        if app is None:
            app = tenant.apps[client_id] = SimApp(client_id, [])
        app.consent = True
        return app

    def register_partner_app(self, partner, seed=False, **options):
        """Register the portal's partner application (portal.partner.PartnerApp) as it exists in Entra ID."""
        return self.register_app(
            partner.client_id,
            partner.display_name,
            [(c.secret, c.expires_at) for c in partner.credentials if c.kind == "secret"],
            [c.certificate for c in partner.credentials if c.kind == "certificate"],
            seed=seed,
            **options,
        )

    def register_portal_tenant(self, tenant, seed=False, partner=None, **options):
        """Register a portal Tenant as it would exist in Entra ID: its domain, and its own app and client secrets
        when it uses one; in partner mode a tenant that consented knows the partner app (``partner``)."""
        if not tenant.uses_own_app:
            consent_to = [partner.client_id] if partner and tenant.consent_granted_at else []
            return self.register(tenant.entra_tenant, tenant_id=tenant.entra_tenant_id, seed=seed,
                                 consent_to=consent_to, **options)
        return self.register(
            tenant.entra_tenant,
            tenant.client_id,
            [(s.value, s.expires_at) for s in tenant.client_secrets.all()],
            tenant_id=tenant.entra_tenant_id,
            seed=seed,
            **options,
        )

    def tenant(self, name_or_id):
        """The SimTenant for a name or ID, or None."""
        tid = self.names.get(str(name_or_id).lower())
        return self.tenants.get(tid) if tid else None

    def expire_secret(self, tenant, secret=None, client_id=None):
        """Make a tenant's secrets (or only ``secret``) expired, as when their end date passes in Entra."""
        with self.lock:
            found = self.tenant(tenant)
            if found is None:
                raise LookupError(tenant)
            count = 0
            for app in found.apps.values():
                if client_id and app.client_id != client_id.lower():
                    continue
                for item in app.secrets:
                    if secret is None or item.value == secret:
                        item.expires_at = _now() - datetime.timedelta(seconds=1)
                        count += 1
            return count

    def add_entra_device(self, tenant, device_id):
        with self.lock:
            self.tenant(tenant).entra_devices.add(device_id.lower())

    def device(self, tenant, device_id):
        """What Intune holds for one device: {user id: {"inventory", "compliance", "messages"}}, or None."""
        found = self.tenant(tenant)
        return found.devices.get(device_id.lower()) if found else None

    def snapshot(self):
        with self.lock:
            return {
                "tenants": [t.summary() for t in self.tenants.values()],
                "messages": len(self.messages),
                "stats": dict(self.stats),
            }

    # -- routes ------------------------------------------------------------------------------

    def install(self, sim):
        self.sim = sim
        r = sim.route
        r("GET", r"/common/discovery/instance", "entra_instance_discovery")(self._instance_discovery)
        r("GET", r"/%s/v2\.0/\.well-known/openid-configuration" % SEG, "entra_openid")(self._openid)
        r("POST", r"/%s/oauth2/v2\.0/token" % SEG, "entra_token")(self._token)
        r("GET", r"/%s/adminconsent" % SEG, "entra_adminconsent")(self._admin_consent)

        r("GET", r"/graph/v1\.0/servicePrincipals", "graph_service_principals")(self._service_principals)
        r("GET", r"/graph/v1\.0/servicePrincipals/(?P<sp>[^/]+)/endpoints", "graph_endpoints")(self._endpoints)
        r("DELETE", r"/graph/v1\.0/devices\(deviceId='(?P<device>[^']+)'\)", "graph_delete_device")(
            self._delete_device
        )
        r("GET", r"/graph/v1\.0/deviceManagement/managedDevices", "graph_managed_devices")(self._managed_devices)
        r("GET", r"/graph/v1\.0/deviceManagement/complianceManagementPartners", "graph_compliance_partners")(
            self._compliance_partners
        )
        r("DELETE", r"/graph/v1\.0/deviceManagement/managedDevices/(?P<managed>[^/]+)", "graph_delete_managed")(
            self._delete_managed
        )

        ts = r"/intune/" + TENANT_SYNC
        r("PUT", ts + r"/PartnerTenants\(guid'%s'\)" % (GUID % "tid"), "intune_partner_tenant_put")(
            self._partner_tenant_put
        )
        r("GET", ts + r"/PartnerTenants\(guid'%s'\)" % (GUID % "tid"), "intune_partner_tenant_get")(
            self._partner_tenant_get
        )
        r("POST", ts + r"/PartnerCompliancePolicies", "intune_policy_create")(self._policy_create)
        r("GET", ts + r"/PartnerCompliancePolicies", "intune_policy_list")(self._policy_list)
        r("POST", ts + r"/PartnerCompliancePolicies\(guid'%s'\)/Assign" % (GUID % "policy"), "intune_policy_assign")(
            self._policy_assign
        )
        ds = r"/intune/" + DEVICE_SYNC + r"/DataUploadMessages\(guid'%s'\)" % (GUID % "message")
        r("PUT", ds, "intune_upload")(self._upload)
        r("GET", ds, "intune_message_status")(self._message_status)

        r("GET", r"/_sim/microsoft/tenants", "sim_ms_tenants")(
            lambda request: {"tenants": self.snapshot()["tenants"]}
        )
        r("POST", r"/_sim/microsoft/tenants", "sim_ms_register")(self._control_register)
        r("POST", r"/_sim/microsoft/apps", "sim_ms_register_app")(self._control_register_app)
        r("POST", r"/_sim/microsoft/expire-secret", "sim_ms_expire")(self._control_expire)
        r("GET", r"/_sim/microsoft/devices", "sim_ms_devices")(self._control_devices)
        r("GET", r"/_sim/microsoft/messages/(?P<message>[^/]+)", "sim_ms_message")(self._control_message)
        r("POST", r"/_sim/microsoft/policies", "sim_ms_policy")(self._control_policy)

    @property
    def base(self):
        return self.sim.base_url

    def _knob(self, name, default=None):
        return self.sim.faults.extra.get(name, default)

    # -- Entra ID ----------------------------------------------------------------------------

    def _entra_error(self, status, error, code, description):
        # Entra's error shape: error, error_description (starting "AADSTSnnn:"), error_codes, ids.
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = _now().strftime("%Y-%m-%d %H:%M:%SZ")
        return HttpError(
            status,
            {
                "error": error,
                "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
                % (code, description, trace, corr, stamp),
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": corr,
                "error_uri": "%s/error?code=%d" % (self.base, code),
            },
        )

    def _known_tenant(self, name):
        tenant = self.tenant(name)
        if tenant is None:
            raise self._entra_error(
                400,
                "invalid_tenant",
                90002,
                "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing "
                "into the correct cloud." % name,
            )
        return tenant

    def _openid(self, request, tenant):
        found = self._known_tenant(tenant)
        root = "%s/%s" % (self.base, found.id)
        return {
            "token_endpoint": root + "/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": root + "/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": "%s/%s/v2.0" % (self.base, found.id),
            "authorization_endpoint": root + "/oauth2/v2.0/authorize",
            "device_authorization_endpoint": root + "/oauth2/v2.0/devicecode",
            "end_session_endpoint": root + "/oauth2/v2.0/logout",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "simulator",
        }

    def _instance_discovery(self, request):
        # msal sends authorization_endpoint=https://<host>/<tenant>/oauth2/v2.0/authorize
        endpoint = request.arg("authorization_endpoint", "")
        match = re.match(r"^https://[^/]+/([^/]+)/", endpoint)
        if not match:
            return Response(400, {"error": "invalid_instance", "error_description": "AADSTS50049: Unknown instance"})
        host = self.base.split("://", 1)[1]
        return {
            "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (self.base, match.group(1)),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def _token(self, request, tenant):
        with self.lock:
            pending = int(self._knob("fail_tokens", 0) or 0)
            if pending > 0:
                self.sim.faults.extra["fail_tokens"] = pending - 1
        if pending > 0:
            status = int(self._knob("fail_tokens_status", 503) or 503)
            self.sim.counts["microsoft:failed_token:%d" % status] += 1
            headers = {"Retry-After": "%g" % self.sim.faults.retry_after} if status == 429 else {}
            # Not Entra's OAuth shape: what a throttling front end or a gateway answers.
            return Response(status, {"error": {"code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                               "message": "injected token endpoint fault"}}, headers)
        form = request.form()
        client_id = (form.get("client_id") or "").lower()
        secret = form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            from urllib.parse import unquote_plus

            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote_plus(user).lower(), unquote_plus(password)
        if form.get("grant_type") != "client_credentials":
            raise self._entra_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        with self.lock:
            found = self._known_tenant(tenant)
            app = found.apps.get(client_id)
            if app is None:
                raise self._entra_error(
                    400,
                    "unauthorized_client",
                    700016,
                    "Application with identifier '%s' was not found in the directory '%s'. This can happen if the "
                    "application has not been installed by the administrator of the tenant or consented to by any "
                    "user in the tenant." % (client_id, tenant),
                )
            partner = self.partner_apps.get(client_id)
            if form.get("client_assertion") or form.get("client_assertion_type"):
                self._check_assertion(form, found, client_id, partner)
            else:
                self._check_secret(found, client_id, partner.secrets if partner else app.secrets, secret)
            if not app.consent:
                raise self._entra_error(
                    400,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application with ID '%s'. Send an "
                    "interactive authorization request for this user and resource." % client_id,
                )
            scope = form.get("scope") or ""
            if not scope.endswith("/.default"):
                raise self._entra_error(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid."
                                        % scope)
            resource = scope[: -len("/.default")].rstrip("/")
            granted = partner or app  # a partner app's permissions are the same in every tenant that consented
            if resource in GRAPH_RESOURCES:
                audience, roles = "graph", granted.graph_roles
            elif resource in INTUNE_RESOURCES and found.intune_licensed:
                audience, roles = "intune", granted.intune_roles
            else:
                raise self._entra_error(
                    400,
                    "invalid_resource",
                    500011,
                    "The resource principal named %s was not found in the tenant named %s. This can happen if the "
                    "application has not been installed by the administrator of the tenant or consented to by any "
                    "user in the tenant." % (resource, tenant),
                )
            lifetime = int(self._knob("token_lifetime", 3599))
            now = time.time()
            claims = {
                "aud": resource,
                "iss": "https://sts.windows.net/%s/" % found.id,
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now) + lifetime,
                "appid": client_id,
                "idtyp": "app",
                "oid": str(uuid.uuid5(NAMESPACE, "sp:%s:%s" % (found.id, client_id))),
                "roles": list(roles if app.consent else ()),
                "tid": found.id,
                "uti": secrets.token_urlsafe(16),
                "ver": "1.0",
            }
            token = "%s.%s." % (_b64({"typ": "JWT", "alg": "none"}), _b64(claims))  # unsigned: JWT-shaped only
            # token_valid_for: the token stops working sooner than expires_in says (expiry mid-run, revocation).
            valid_for = float(self._knob("token_valid_for", 0) or 0) or lifetime
            self.tokens[token] = IssuedToken(found.id, client_id, audience, tuple(roles), now + valid_for)
            self.stats["tokens"] += 1
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def _check_secret(self, found, client_id, app_secrets, secret):
        given = (secret or "").encode()
        match = next((s for s in app_secrets if secrets.compare_digest(s.value.encode(), given)), None)
        if match is None:
            raise self._entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                "secret value, not the client secret ID, for a secret added to app '%s'." % client_id,
            )
        expired_tenants = {str(t).lower() for t in self._knob("expire_secrets", ()) or ()}
        if match.expires_at <= _now() or found.names & expired_tenants:
            raise self._entra_error(
                401,
                "invalid_client",
                7000222,
                "The provided client secret keys for app '%s' are expired." % client_id,
            )

    def _check_assertion(self, form, found, client_id, partner):
        """A certificate credential: a JWT signed with the key of a certificate uploaded to the app.

        Microsoft identity platform "certificate credentials": header ``x5t`` (SHA-1) or ``x5t#S256``
        (SHA-256) thumbprint; claims ``aud`` = the token endpoint, ``iss`` = ``sub`` = the client ID, ``exp``,
        ``nbf``, a unique ``jti``; signed RS256 or PS256.
        """
        assertion = form.get("client_assertion") or ""
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise self._entra_error(400, "invalid_request", 90014,
                                    "The request body must contain client_assertion and client_assertion_type "
                                    "'%s'." % ASSERTION_TYPE)
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise self._entra_error(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
        certificates = partner.certificates if partner else []
        # base64url, with or without padding (msal pads it)
        x5t, x5t256 = (str(header.get(name) or "").rstrip("=") for name in ("x5t", "x5t#S256"))
        cert = next((c for c in certificates if (x5t and _b64url_hex(c.sha1) == x5t)
                     or (x5t256 and _b64url_hex(c.sha256) == x5t256)), None)
        if cert is None:
            raise self._entra_error(
                401, "invalid_client", 700027,
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key "
                "used by client: '%s']" % (x5t or x5t256 or ""),
            )
        if cert.expires_at <= _now():
            raise self._entra_error(401, "invalid_client", 700027,
                                    "Client assertion contains an invalid signature. [Reason - The key used is "
                                    "expired.]")
        audiences = ["%s/%s/oauth2/v2.0/token" % (self.base, name) for name in found.names]
        try:
            claims = jwt.decode(
                assertion, cert.public_key, algorithms=["RS256", "PS256"], audience=audiences,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]}, leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise self._entra_error(401, "invalid_client", 700024,
                                    "Client assertion is not within its valid time range.") from None
        except jwt.InvalidSignatureError:
            raise self._entra_error(401, "invalid_client", 700027,
                                    "Client assertion contains an invalid signature.") from None
        except jwt.InvalidAudienceError:
            raise self._entra_error(401, "invalid_client", 700021,
                                    "Client assertion audience claim does not match Realm issuer.") from None
        except jwt.PyJWTError as exc:
            raise self._entra_error(401, "invalid_client", 50027, "JWT token is invalid or malformed: %s" % exc
                                    ) from None
        if str(claims["iss"]).lower() != client_id or str(claims["sub"]).lower() != client_id:
            raise self._entra_error(401, "invalid_client", 700023,
                                    "Client assertion iss and sub must both be the client ID '%s'." % client_id)
        # msal reuses one assertion for up to 9 minutes (its AutoRefresher), which Entra accepts; a jti seen
        # before on a different assertion is a forgery or a broken client.
        digest = hashlib.sha256(assertion.encode()).hexdigest()
        if self.assertion_ids.setdefault(str(claims["jti"]), digest) != digest:
            raise self._entra_error(401, "invalid_client", 50027,
                                    "JWT token is invalid: jti %s was used by another assertion." % claims["jti"])

    def _tenant_knob(self, name, tenant):
        """A per-tenant knob: {tenant name or ID: value} in the faults, the value for ``tenant`` or None."""
        for key, value in (self._knob(name) or {}).items():
            if str(key).lower() in tenant.names:
                return value
        return None

    def _admin_consent(self, request, tenant):
        """Entra's admin-consent endpoint: grant the app's permissions in the tenant, then redirect back.

        Success: ``redirect_uri?tenant=<tenant ID>&admin_consent=True&state=…``; otherwise
        ``redirect_uri?error=…&error_description=AADSTS…&state=…`` (the ``consent_answer`` knob).
        """
        client_id = (request.arg("client_id") or "").lower()
        redirect = request.arg("redirect_uri") or ""
        state = request.arg("state")
        with self.lock:
            found = self._known_tenant(tenant)
            partner = self.partner_apps.get(client_id)
            if partner is None and client_id not in found.apps:
                raise self._entra_error(400, "unauthorized_client", 700016, "Application '%s' not found." % client_id)
            if partner and partner.redirect_uris and redirect not in partner.redirect_uris:
                raise self._entra_error(
                    400, "invalid_request", 50011,
                    "The redirect URI '%s' specified in the request does not match the redirect URIs configured for "
                    "the application '%s'." % (redirect, client_id),
                )
            answer = str(self._tenant_knob("consent_answer", found) or "")
            params = {}
            if answer == "declined":
                params = {"error": "access_denied",
                          "error_description": "AADSTS65004: User declined to consent to access the app."}
            elif answer.startswith("error:"):
                _kind, code, text = (answer.split(":", 2) + ["", ""])[:3]
                params = {"error": "invalid_request", "error_description": "AADSTS%s: %s" % (code, text)}
            elif answer.startswith("other_tenant:"):
                params = {"tenant": answer.split(":", 1)[1], "admin_consent": "True"}
            else:
                self._consent(found, client_id)
                params = {"tenant": found.id, "admin_consent": "True"}
        if state is not None:
            params["state"] = state
        if not redirect.startswith(("https://", "http://")):
            return Response(200, "Admin consent answered for %s in %s: %s" % (client_id, found.id, params))
        sep = "&" if "?" in redirect else "?"
        return Response(302, "", {"Location": "%s%s%s" % (redirect, sep, urlencode(params))})

    # -- resource authentication ---------------------------------------------------------------

    def _authenticate(self, request, audience, role=None):
        token = request.bearer
        with self.lock:
            info = self.tokens.get(token)
            if info is None:
                raise _graph_error(401, "InvalidAuthenticationToken", "Access token is empty or not valid.")
            if info.expires <= time.time():
                raise _graph_error(
                    401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
                )
            if info.audience != audience:
                raise _graph_error(401, "InvalidAuthenticationToken", "Invalid audience.")
            if not info.used:
                pending = int(self._knob("reject_fresh_tokens", 0) or 0)
                if pending > 0:
                    # Entra sometimes rejects a token it has just issued (replication): the portal must
                    # retry once with a fresh token.
                    self.sim.faults.extra["reject_fresh_tokens"] = pending - 1
                    self.sim.counts["microsoft:rejected_fresh_token"] += 1
                    info.used = True
                    raise _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
                info.used = True
            tenant = self.tenants.get(info.tenant_id)
            if tenant is None:
                raise _graph_error(401, "InvalidAuthenticationToken", "The tenant no longer exists.")
        wanted = role if isinstance(role, tuple) else (role,) if role else ()
        if wanted and not set(wanted) & set(info.roles):
            if audience == "graph":
                raise _graph_error(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            raise _intune_error(403, "Forbidden", "The application is not authorized to call the partner service.")
        return tenant, info

    # -- Graph -------------------------------------------------------------------------------

    def _service_principals(self, request):
        tenant, _info = self._authenticate(request, "graph", "Application.Read.All")
        match = re.search(r"appId eq '([^']+)'", request.arg("$filter", ""))
        if not match:
            raise _graph_error(400, "BadRequest", "This simulator answers only $filter=appId eq '<id>'.")
        if match.group(1).lower() != INTUNE_APP_ID or not tenant.intune_licensed:
            return {"@odata.context": "servicePrincipals", "value": []}
        return {
            "@odata.context": "servicePrincipals",
            "value": [{"id": tenant.sp_id, "appId": INTUNE_APP_ID, "displayName": "Microsoft Intune"}],
        }

    def _endpoints(self, request, sp):
        tenant, _info = self._authenticate(request, "graph", "Application.Read.All")
        if sp != tenant.sp_id:
            raise _graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % sp)
        return {
            "value": [
                {
                    "id": str(uuid.uuid5(NAMESPACE, name + tenant.id)),
                    "capability": name,
                    "providerId": str(uuid.uuid5(NAMESPACE, name)),
                    "providerName": name,
                    "providerResourceId": None,
                    "uri": "%s/intune/%s" % (self.base, name),
                }
                for name in ("PartnerTenantDataSyncService", "PartnerDeviceDataSyncService", "StatelessAppService")
            ]
        }

    def _delete_device(self, request, device):
        tenant, _info = self._authenticate(request, "graph", "Device.ReadWrite.All")
        device = device.lower()
        with self.lock:
            if device not in tenant.entra_devices:
                raise _graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % device)
            tenant.entra_devices.discard(device)
        return Response(204, None)

    def _managed_view(self, tenant, device_id, users):
        # Intune's view of a partner-managed Mac: the newest inventory and compliance of its users.
        inventory = max((u["inventory"] for u in users.values() if u.get("inventory")),
                        key=lambda e: e["LastUpdateTime"], default={})
        compliance = max((u["compliance"] for u in users.values() if u.get("compliance")),
                         key=lambda e: e["LastUpdateTime"], default={})
        status = compliance.get("complianceStatus")
        return {
            "id": str(uuid.uuid5(NAMESPACE, "managed:%s:%s" % (tenant.id, device_id))),
            "azureADDeviceId": device_id,
            "deviceName": inventory.get("DeviceName", ""),
            "operatingSystem": "macOS",
            "osVersion": inventory.get("OsVersion", ""),
            "managementAgent": "jamf",
            "complianceState": {"compliant": "compliant", "notCompliant": "noncompliant"}.get(status, "unknown"),
            "userId": (compliance or inventory).get("UserId", ""),
            "lastSyncDateTime": max(inventory.get("LastUpdateTime", ""), compliance.get("LastUpdateTime", "")),
        }

    def _compliance_partners(self, request):
        """Graph complianceManagementPartners: each partner app as the tenant's Intune admin added it.

        Microsoft's Graph reference: the application permission DeviceManagementServiceConfig.Read.All (or
        .ReadWrite.All); properties displayName, partnerState, macOsOnboarded, macOsEnrollmentAssignments,
        lastHeartbeatDateTime. Which partners a tenant added is the ``compliance_partner`` knob's business.
        """
        tenant, _info = self._authenticate(
            request, "graph", ("DeviceManagementServiceConfig.Read.All", "DeviceManagementServiceConfig.ReadWrite.All")
        )
        shape = str(self._tenant_knob("compliance_partner", tenant) or "")
        now = _now()
        value = []
        with self.lock:
            apps = [a for a in self.partner_apps.values() if a.display_name]
            for app in apps:
                if shape == "missing":
                    continue
                heartbeat = now - (datetime.timedelta(days=3) if shape == "unresponsive" else
                                   datetime.timedelta(minutes=7))
                groups = [] if shape == "no_groups" else list(tenant.partner_groups)
                value.append({
                    "id": str(uuid.uuid5(NAMESPACE, "partner:%s:%s" % (tenant.id, app.client_id))),
                    "displayName": app.display_name,
                    "partnerState": {"unresponsive": "unresponsive", "terminated": "terminated"}.get(shape, "enabled"),
                    "lastHeartbeatDateTime": _iso(heartbeat),
                    "macOsOnboarded": shape != "not_onboarded",
                    "androidOnboarded": False,
                    "iosOnboarded": False,
                    "windowsOnboarded": False,
                    "macOsEnrollmentAssignments": [] if shape == "not_onboarded" else [
                        {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g}}
                        for g in groups
                    ],
                    "androidEnrollmentAssignments": [],
                    "iosEnrollmentAssignments": [],
                })
        return {"@odata.context": "deviceManagement/complianceManagementPartners", "value": value}

    def _managed_devices(self, request):
        tenant, _info = self._authenticate(
            request,
            "graph",
            ("DeviceManagementManagedDevices.Read.All", "DeviceManagementManagedDevices.ReadWrite.All"),
        )
        wanted = None
        flt = request.arg("$filter")
        if flt:
            match = re.fullmatch(r"\s*azureADDeviceId eq '([^']+)'\s*", flt)
            if not match:
                raise _graph_error(400, "BadRequest", "Only $filter=azureADDeviceId eq '<id>' is supported.")
            wanted = match.group(1).lower()
        top = max(1, min(999, int(request.arg("$top", "100") or 100)))
        skip = int(request.arg("$skiptoken", "0") or 0)
        with self.lock:
            ids = sorted(
                d for d in tenant.devices if d not in tenant.deleted_managed and (wanted is None or d == wanted)
            )
            page = [self._managed_view(tenant, d, tenant.devices[d]) for d in ids[skip : skip + top]]
        body = {"@odata.context": "deviceManagement/managedDevices", "value": page}
        if skip + top < len(ids):
            body["@odata.nextLink"] = "%s/graph/v1.0/deviceManagement/managedDevices?$top=%d&$skiptoken=%d%s" % (
                self.base, top, skip + top, "&$filter=azureADDeviceId eq '%s'" % wanted if wanted else ""
            )
        return body

    def _delete_managed(self, request, managed):
        tenant, _info = self._authenticate(request, "graph", ("DeviceManagementManagedDevices.ReadWrite.All",))
        with self.lock:
            for device_id in tenant.devices:
                if device_id in tenant.deleted_managed:
                    continue
                if str(uuid.uuid5(NAMESPACE, "managed:%s:%s" % (tenant.id, device_id))) == managed:
                    tenant.deleted_managed.add(device_id)
                    return Response(204, None)
        raise _graph_error(404, "ResourceNotFound", "Managed device %s not found." % managed)

    # -- Intune partner service -------------------------------------------------------------------

    def _intune(self, request, version):
        if request.arg("api-version") != version:
            raise _intune_error(400, "BadRequest", "api-version must be %s." % version)
        return self._authenticate(request, "intune", "update_device_attributes")

    def _own_tenant(self, tenant, tid):
        if tid.lower() != tenant.id:
            raise _intune_error(
                403, "Forbidden", "The token's tenant %s may not act for tenant %s." % (tenant.id, tid)
            )

    def _partner_tenant_put(self, request, tid):
        tenant, info = self._intune(request, "1.6")
        self._own_tenant(tenant, tid)
        app = tenant.apps.get(info.client_id)
        if app is None or not app.partner_connector:
            raise _intune_error(
                403, "PartnerNotEnabled",
                "No partner compliance connector is enabled for application %s in this tenant." % info.client_id,
            )
        body = request.json()
        if not isinstance(body, dict) or body.get("Provisioned") not in (1, 2):
            raise _intune_error(400, "BadRequest", "Provisioned must be 1 (provision) or 2 (deprovision).")
        if body["Provisioned"] == 1:
            for key in ("PartnerEnrollmentUrl", "PartnerRemediationUrl"):
                if not _landing_url_ok(body.get(key)):
                    raise _intune_error(400, "BadRequest", "%s must be an https URL." % key)
        with self.lock:
            previous = tenant.partner
            tenant.partner = {
                "TenantId": tenant.id,
                "Provisioned": body["Provisioned"],
                "PartnerEnrollmentUrl": body.get("PartnerEnrollmentUrl", previous.get("PartnerEnrollmentUrl")),
                "PartnerRemediationUrl": body.get("PartnerRemediationUrl", previous.get("PartnerRemediationUrl")),
                "LastModifiedTime": _iso(_now()),
            }
            return dict(tenant.partner)

    def _partner_tenant_get(self, request, tid):
        tenant, _info = self._intune(request, "1.6")
        self._own_tenant(tenant, tid)
        if not tenant.partner:
            raise _intune_error(404, "NotFound", "The tenant has not been provisioned by a partner.")
        return dict(tenant.partner)

    def _policy_create(self, request):
        tenant, _info = self._intune(request, "1.6")
        body = request.json()
        if not isinstance(body, dict):
            raise _intune_error(400, "BadRequest", "Send a JSON object.")
        problems = []
        if not str(body.get("DisplayName") or "").strip():
            problems.append("DisplayName is required")
        if body.get("Platform") != "macOS":
            problems.append("Platform must be macOS")
        if body.get("PartnerManagedCompliance") is not True:
            problems.append("PartnerManagedCompliance must be true")
        if problems:
            raise _intune_error(400, "BadRequest", "; ".join(problems))
        with self.lock:
            for policy in tenant.policies.values():
                if policy["DisplayName"] == body["DisplayName"]:
                    raise _intune_error(409, "Conflict", "A policy named %r already exists." % body["DisplayName"])
                if policy["Platform"] == "macOS" and policy["PartnerManagedCompliance"]:
                    # One partner-managed policy per platform, whatever it is called (an admin may rename it).
                    raise _intune_error(
                        409, "Conflict", "A partner-managed macOS policy already exists (%r)." % policy["DisplayName"]
                    )
            policy = self._add_policy(tenant, body["DisplayName"], body.get("Description", ""))
            return Response(201, dict(policy))

    def _add_policy(self, tenant, display_name, description="", platform="macOS", partner_managed=True):
        policy_id = str(uuid.uuid4())
        tenant.policies[policy_id] = {
            "Id": policy_id,
            "DisplayName": display_name,
            "Description": description,
            "Platform": platform,
            "PartnerManagedCompliance": partner_managed,
            "Assignments": [],
        }
        return tenant.policies[policy_id]

    def add_policy(self, tenant, display_name, description="", platform="macOS", partner_managed=True):
        """Give a tenant a compliance policy as an Intune admin would (renamed, or not partner managed)."""
        with self.lock:
            found = self.tenant(tenant)
            if found is None:
                raise LookupError(tenant)
            return dict(self._add_policy(found, display_name, description, platform, partner_managed))

    def _policy_list(self, request):
        tenant, _info = self._intune(request, "1.6")
        with self.lock:
            return {"value": [dict(p) for p in tenant.policies.values()]}

    def _policy_assign(self, request, policy):
        tenant, _info = self._intune(request, "1.6")
        body = request.json()
        groups = body.get("assignments") if isinstance(body, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, str) and GUID_RE.match(g) for g in groups):
            raise _intune_error(400, "BadRequest", "assignments must be a list of Entra group IDs (GUIDs).")
        with self.lock:
            found = tenant.policies.get(policy.lower())
            if found is None:
                raise _intune_error(404, "NotFound", "Policy %s not found." % policy)
            found["Assignments"] = sorted({g.lower() for g in groups} | set(found["Assignments"]))
            return dict(found)

    def _upload(self, request, message):
        message = message.lower()
        pending_throttles = int(self._knob("throttle_uploads", 0) or 0)
        if pending_throttles > 0:
            with self.lock:
                self.sim.faults.extra["throttle_uploads"] = pending_throttles - 1
                self.uploads.append((time.monotonic(), message, 429))
            retry = self.sim.faults.retry_after
            return Response(429, {"error": {"code": "TooManyRequests", "message": "Slow down."}},
                            {"Retry-After": "%g" % retry})
        limit = int(self._knob("max_upload_bytes", 0) or 0)
        if limit and len(request.body) > limit:  # a front end's size limit: nothing is read or applied
            with self.lock:
                self.stats["uploads_too_large"] = self.stats.get("uploads_too_large", 0) + 1
                self.uploads.append((time.monotonic(), message, 413))
            raise _intune_error(
                413, "RequestEntityTooLarge",
                "The request body is %d bytes; at most %d bytes are accepted." % (len(request.body), limit),
            )
        tenant, _info = self._intune(request, "1.2")
        body = request.json()
        entities = self._validate_upload(tenant, body)
        with self.lock:
            if tenant.partner.get("Provisioned") == 2 or (
                self._knob("require_provisioning") and tenant.partner.get("Provisioned") != 1
            ):
                self.stats["uploads_rejected"] += 1
                raise _intune_error(
                    403, "PartnerTenantNotProvisioned", "The partner is not provisioned for this tenant."
                )
            if message in self.messages:
                # The message ID is the idempotency key: a resend is acknowledged, not applied again.
                self.stats["uploads_duplicate"] += 1
                self.uploads.append((time.monotonic(), message, "duplicate"))
                record = self.messages[message]
                return Response(202, {"Id": message, "Status": self._status_of(record)})
            failing = self._knob("failing_devices") or {}
            failure = next((failing[e["DeviceId"]] for e in entities if e["DeviceId"] in failing), None)
            record = {
                "Id": message,
                "tenant": tenant.id,
                "UploadTime": body["UploadTime"],
                "ContentDigest": hashlib.sha256(body["Content"].encode()).hexdigest(),  # what arrived, compactly
                "ReceivedTime": _iso(_now()),
                "EntityCount": len(entities),
                "ready_at": time.monotonic() + float(self._knob("processing_delay", 0) or 0),
                "Status": "Failed" if failure else "Completed",
                "ErrorCode": "",
                "ErrorDetail": "",
            }
            if failure:
                code, _, detail = str(failure).partition(":")
                record["ErrorCode"], record["ErrorDetail"] = code.strip(), detail.strip() or code.strip()
            else:
                self._apply(tenant, entities, message)
            self.messages[message] = record
            self.stats["uploads_applied"] += 1
            self.uploads.append((time.monotonic(), message, 202))
        drop = float(self._knob("drop_answer_rate", 0) or 0)
        if drop and self.sim.rng.random() < drop:  # applied, but the answer is lost: the client must resend
            return DROP
        delay = float(self._knob("answer_delay", 0) or 0)
        if delay:  # applied, but the answer is late: a client that dies now never learns it was accepted
            time.sleep(delay)
        return Response(202, {"Id": message, "Status": self._status_of(record)})

    def _validate_upload(self, tenant, body):
        if not isinstance(body, dict):
            raise _intune_error(
                400, "BadRequest", "The body must be a JSON object with TenantId, UploadTime and Content."
            )
        problems = []
        if str(body.get("TenantId") or "").lower() != tenant.id:
            problems.append("TenantId must be the tenant's ID %s" % tenant.id)
        try:
            _parse_time(body.get("UploadTime"))
        except ValueError:
            problems.append("UploadTime must be an ISO 8601 timestamp")
        content = body.get("Content")
        if not isinstance(content, str):
            # Intune partner API: Content is a JSON string, not an embedded array.
            raise _intune_error(400, "BadRequest", "; ".join([*problems, "Content must be a JSON string"]))
        try:
            entities = json.loads(content)
        except ValueError as exc:
            raise _intune_error(400, "BadRequest", "Content is not valid JSON: %s" % exc) from None
        if not isinstance(entities, list) or not entities:
            problems.append("Content must be a non-empty JSON list of entities")
            entities = []
        if len(entities) > MAX_ENTITIES:
            problems.append("at most %d entities per message" % MAX_ENTITIES)
        for index, entity in enumerate(entities):
            where = "Content[%d]" % index
            if not isinstance(entity, dict):
                problems.append("%s is not an object" % where)
                continue
            kind = entity.get("EntityType")
            if kind == 1:
                required = INVENTORY_FIELDS
            elif kind == 4:
                required = COMPLIANCE_FIELDS
            else:
                problems.append("%s: EntityType must be 1 (inventory) or 4 (compliance)" % where)
                continue
            missing = [name for name in required if entity.get(name) is None]
            if missing:
                problems.append("%s: missing %s" % (where, ", ".join(missing)))
                continue
            if str(entity["TenantId"]).lower() != tenant.id:
                problems.append("%s: TenantId differs from the message's" % where)
            for key in ("DeviceId", "UserId"):
                if not GUID_RE.match(str(entity[key])):
                    problems.append("%s: %s must be a GUID" % (where, key))
            for key in ("LastUpdateTime", "LastCheckInTime") if kind == 1 else ("LastUpdateTime",):
                try:
                    _parse_time(entity[key])
                except ValueError:
                    problems.append("%s: %s must be an ISO 8601 timestamp" % (where, key))
            if kind == 1:
                if entity["State"] not in (0, 1, 2):
                    problems.append("%s: State must be 0, 1 or 2" % where)
                if entity["DeviceManagementState"] not in ("managed", "notManaged"):
                    problems.append("%s: DeviceManagementState must be managed or notManaged" % where)
                if not isinstance(entity["EasIds"], list):
                    problems.append("%s: EasIds must be a list" % where)
            elif entity["complianceStatus"] not in ("compliant", "notCompliant"):
                problems.append("%s: complianceStatus must be compliant or notCompliant" % where)
            if len(problems) >= 20:
                break
        if problems:
            with self.lock:
                self.stats["uploads_rejected"] += 1
            raise _intune_error(400, "BadRequest", "; ".join(problems[:20]))
        return entities

    def _apply(self, tenant, entities, message):
        for entity in entities:
            device_id, user_id = entity["DeviceId"].lower(), entity["UserId"].lower()
            users = tenant.devices.setdefault(device_id, {})
            record = users.setdefault(user_id, {"inventory": None, "compliance": None, "messages": 0, "stale": 0})
            key = "inventory" if entity["EntityType"] == 1 else "compliance"
            current = record[key]
            # LastUpdateTime orders reports: an older one arriving late does not overwrite a newer one.
            if current is None or _parse_time(entity["LastUpdateTime"]) >= _parse_time(current["LastUpdateTime"]):
                record[key] = entity
            else:
                record["stale"] += 1
            record["messages"] += 1
            record["last_message"] = message
            tenant.entra_devices.add(device_id)
            tenant.deleted_managed.discard(device_id)

    def _status_of(self, record):
        return record["Status"] if time.monotonic() >= record["ready_at"] else "Processing"

    def _message_status(self, request, message):
        tenant, _info = self._intune(request, "1.2")
        with self.lock:
            record = self.messages.get(message.lower())
            if record is None or record["tenant"] != tenant.id:
                raise _intune_error(404, "NotFound", "No message %s." % message)
            status = self._status_of(record)
            return {
                "Id": record["Id"],
                "Status": status,
                "ErrorCode": record["ErrorCode"] if status == "Failed" else "",
                "ErrorDetail": record["ErrorDetail"] if status == "Failed" else "",
                "UploadTime": record["UploadTime"],
                "ReceivedTime": record["ReceivedTime"],
                "EntityCount": record["EntityCount"],
            }

    # -- control -----------------------------------------------------------------------------

    def _control_register(self, request):
        body = request.json()
        if not isinstance(body, dict) or not body.get("name") or not body.get("client_id"):
            raise HttpError(400, {"error": "send name, client_id and secrets"})
        tenant = self.register(**body)
        return tenant.summary()

    def _control_register_app(self, request):
        body = request.json()
        if not isinstance(body, dict) or not body.get("client_id"):
            raise HttpError(400, {"error": "send client_id, display_name, secrets and/or certificates (PEM)"})
        app = self.register_app(**body)
        return {"client_id": app.client_id, "display_name": app.display_name, "secrets": len(app.secrets),
                "certificates": [c.sha1.upper() for c in app.certificates]}

    def _control_expire(self, request):
        body = request.json() or {}
        try:
            count = self.expire_secret(body.get("tenant", ""), body.get("secret"), body.get("client_id"))
        except LookupError:
            raise HttpError(404, {"error": "no tenant %r" % body.get("tenant")}) from None
        return {"expired": count}

    def _control_policy(self, request):
        body = request.json() or {}
        if not isinstance(body, dict) or not body.get("tenant") or not body.get("display_name"):
            raise HttpError(400, {"error": "send tenant and display_name (platform, partner_managed optional)"})
        try:
            return self.add_policy(body["tenant"], body["display_name"], body.get("description", ""),
                                   body.get("platform", "macOS"), bool(body.get("partner_managed", True)))
        except LookupError:
            raise HttpError(404, {"error": "no tenant %r" % body["tenant"]}) from None

    def _control_devices(self, request):
        tenant = self.tenant(request.arg("tenant", ""))
        if tenant is None:
            raise HttpError(404, {"error": "no tenant %r" % request.arg("tenant")})
        with self.lock:
            return {"tenant": tenant.id, "devices": json.loads(json.dumps(tenant.devices))}

    def _control_message(self, request, message):
        with self.lock:
            record = self.messages.get(message.lower())
            if record is None:
                raise HttpError(404, {"error": "no message"})
            return {k: v for k, v in record.items() if k != "ready_at"}


def _landing_url_ok(value):
    # Intune wants https; the simulator also takes the demo's own http://127.0.0.1 / localhost portal.
    value = str(value or "")
    return value.startswith("https://") or re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/", value)


def _graph_error(status, code, message):
    return HttpError(status, {"error": {"code": code, "message": message, "innerError": {
        "date": _iso(_now()), "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}})


def _intune_error(status, code, message):
    return HttpError(status, {"error": {"code": code, "message": message}})


SERVICE_FACTORIES.append(MicrosoftService)
