"""The portal's client for Entra ID, Microsoft Graph and the Intune partner service.

``IntuneClient.from_tenant(tenant)`` gives a client for one customer tenant: with the MSP's partner
application (design §6a; a certificate or client secrets, ``portal/partner.py``) or, for the legacy
inventory mode and an override, with the tenant's own app and secrets. Tokens come from msal's
``ConfidentialClientApplication`` (client credentials; a certificate signs a client assertion); one msal
app per (authority, client ID, credential, CA bundle) is kept for the life of the process so msal's token
cache serves repeated calls.
Service discovery is cached for 24 hours per tenant. HTTP goes through one keep-alive session per
thread, with connect and read timeouts, backoff on 429 / 5xx that honours ``Retry-After``, and one
retry of a 401 with a freshly issued token (Entra sometimes rejects a token it has just issued).

Protocol facts (design §6): Graph discovery of ``PartnerTenantDataSyncService`` and
``PartnerDeviceDataSyncService`` on the Intune service principal (appId 0000000a-…); PartnerTenants
and PartnerCompliancePolicies at api-version 1.6; DataUploadMessages at api-version 1.2, whose
``Content`` is a JSON string of a list of entities.
"""

import base64
import contextlib
import datetime
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import msal
import requests
from django.conf import settings
from django.utils import timezone

from compliance.intune.clouds import INTUNE_APP_ID, get_cloud
from compliance.intune.errors import (
    IntuneError,
    from_discovery_failure,
    from_entra,
    from_exception,
    from_response,
    problem,
    scrub,
)
from compliance.intune.payloads import upload_body
from portal.http import VerifyingSession, ca_bundle, parse_retry_after
from portal.partner import Credential, partner_application

logger = logging.getLogger(__name__)

TENANT_SYNC = "PartnerTenantDataSyncService"
DEVICE_SYNC = "PartnerDeviceDataSyncService"
TENANT_API_VERSION = "1.6"  # PartnerTenants, PartnerCompliancePolicies
DEVICE_API_VERSION = "1.2"  # DataUploadMessages
DISCOVERY_TTL = 24 * 3600  # design §6: cache discovery for 24 h
BAD_SECRET_TTL = 300  # skip a credential Entra rejected for this long, while another one works
# Entra answers that let the client try the next credential of a rollover (errors.py: AADSTS codes).
NEXT_CREDENTIAL_CODES = {"invalid_secret", "secret_expired", "certificate_unknown", "assertion_invalid"}
DEFAULT_POLICY_NAME = "Mac compliance (Jamf Pro, partner managed)"

_lock = threading.Lock()
_apps = {}  # (authority, client id, credential digest, verify) -> msal.ConfidentialClientApplication
_http_caches = {}  # the same key -> the dict msal keeps its throttled answers in
_discovery = {}  # (graph root, entra tenant, client id) -> (monotonic expiry, Endpoints)
_bad_secrets = {}  # credential digest -> monotonic time until which it is skipped
_local = threading.local()  # per-thread sessions and the last HTTP answer msal saw


def clear_caches():
    """Forget msal apps, discovery results and sessions (tests; a changed CA bundle)."""
    with _lock:
        for app in _apps.values():
            with contextlib.suppress(Exception):  # closing is best effort
                app.http_client.close()
        _apps.clear()
        _http_caches.clear()
        _discovery.clear()
        _bad_secrets.clear()
    sessions = getattr(_local, "sessions", None)
    if sessions:
        for session in sessions.values():
            session.close()
        sessions.clear()


class PortalSession(VerifyingSession):
    """The shared verifying session, remembering the last answer's status and Retry-After per thread.

    msal's token results do not carry them, and the client needs them to back off.
    """

    def __init__(self, verify, timeout):
        super().__init__(verify, timeout, pool_connections=4, pool_maxsize=32)

    def request(self, method, url, **kwargs):
        response = super().request(method, url, **kwargs)
        _local.last_answer = (response.status_code, response.headers.get("Retry-After"))
        return response


def _session(verify, timeout):
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    key = (verify, timeout)
    if key not in sessions:
        sessions[key] = PortalSession(verify, timeout)
    return sessions[key]


def jwt_claims(token):
    """The (unverified) claims of a JWT access token: the portal only reads ``tid`` from it."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


@dataclass(frozen=True)
class Endpoints:
    tenant_sync: str
    device_sync: str


@dataclass
class PolicyResult:
    id: str
    created: bool
    assigned: list = field(default_factory=list)


@dataclass
class MessageStatus:
    """What Intune says about one DataUploadMessage: Status is Completed, Failed, or still pending."""

    message_id: str
    status: str
    error_code: str = ""
    error_detail: str = ""
    raw: dict = field(default_factory=dict)

    @property
    def done(self):
        return self.status in ("Completed", "Failed")


class IntuneClient:
    """Talks to Entra ID, Graph and the Intune partner service for one customer tenant."""

    def __init__(
        self,
        entra_tenant,
        client_id,
        credentials,
        cloud="global",
        *,
        tenant_id=None,
        on_tenant_id=None,
        timeout=None,
        max_retries=None,
        max_retry_wait=None,
    ):
        if not entra_tenant or not client_id:
            raise IntuneError(problem("not_configured"))
        # Plain strings are client secrets; portal.partner.Credential objects may also be certificates.
        credentials = [c if isinstance(c, Credential) else Credential("secret", None, secret=c)
                       for c in credentials if c]
        if not credentials:
            raise IntuneError(problem("no_secret"))
        self.entra_tenant = entra_tenant.strip()
        self.client_id = client_id.strip()
        self.cloud = get_cloud(cloud)
        self.verify = ca_bundle()
        self.timeout = tuple(timeout or getattr(settings, "INTUNE_HTTP_TIMEOUT", (5, 30)))
        self.max_retries = getattr(settings, "INTUNE_MAX_RETRIES", 3) if max_retries is None else max_retries
        self.max_retry_wait = (
            getattr(settings, "INTUNE_MAX_RETRY_WAIT", 30) if max_retry_wait is None else max_retry_wait
        )
        self._credentials = credentials
        self._secrets = [text for c in credentials for text in c.sensitive]  # what scrub() removes
        self._tenant_id = str(tenant_id) if tenant_id else None
        self._on_tenant_id = on_tenant_id
        self.waits = []  # seconds slept before retries, for logs and tests

    def __repr__(self):  # never the secrets
        return "<IntuneClient %s app %s (%s)>" % (self.entra_tenant, self.client_id, self.cloud.key)

    @classmethod
    def from_tenant(cls, tenant, partner=None, **kwargs):
        """A client for a portal Tenant: its cloud and Entra tenant, and the application it uses.

        Partner mode: the MSP's partner application and its unexpired credentials, newest first. The legacy
        inventory mode and an override: the tenant's own app ID and its unexpired client secrets, newest first.
        """
        from portal.models import Tenant

        def save_tenant_id(tid):
            if str(tenant.entra_tenant_id or "") != tid:
                Tenant.objects.filter(pk=tenant.pk).update(entra_tenant_id=tid)
                tenant.entra_tenant_id = uuid.UUID(tid)

        if tenant.uses_own_app:
            client_id = tenant.client_id
            credentials = list(
                tenant.client_secrets.filter(expires_at__gt=timezone.now())
                .order_by("-expires_at", "-created_at")
                .values_list("value", flat=True)
            )
        else:
            partner = partner or partner_application()
            if partner is None:
                raise IntuneError(problem("no_partner_app"))
            client_id = partner.client_id
            credentials = partner.valid_credentials()
        return cls(
            tenant.entra_tenant,
            client_id,
            credentials,
            tenant.cloud,
            tenant_id=tenant.entra_tenant_id,
            on_tenant_id=save_tenant_id,
            **kwargs,
        )

    # -- errors ------------------------------------------------------------------------------

    def _fail(self, prob):
        prob.detail = scrub(prob.detail, self._secrets)
        prob.message = scrub(prob.message, self._secrets)
        return IntuneError(prob)

    # -- tokens ------------------------------------------------------------------------------

    @property
    def authority(self):
        return self.cloud.authority(self.entra_tenant)

    def _app(self, credential):
        key = (self.authority, self.client_id, credential.key, self.verify)
        app = _apps.get(key)
        if app is not None:
            return app
        with _lock:
            app = _apps.get(key)
            if app is None:
                # Building the app reads the tenant's OpenID configuration: an unknown tenant fails here.
                # Instance discovery would ask login.microsoftonline.com about a host it cannot know (an
                # override such as the simulator); the real hosts are known to msal and skip it anyway.
                http_cache = {}
                app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=credential.msal_credential(),
                    authority=self.authority,
                    http_client=PortalSession(self.verify, self.timeout),
                    instance_discovery=False if self.cloud.overridden else None,
                    http_cache=http_cache,
                )
                _apps[key] = app
                _http_caches[key] = http_cache
        return app

    def check_tenant(self):
        """Read the tenant's OpenID configuration; returns the tenant part of its token endpoint."""
        app = self._call_msal(lambda: self._app(self._credentials[0]))
        return app.authority.tenant

    def _call_msal(self, func):
        try:
            return func()
        except IntuneError:
            raise
        except ValueError as exc:  # msal: the OpenID configuration could not be read (unknown tenant)
            raise self._fail(from_discovery_failure(exc)) from None
        except msal.exceptions.MsalServiceError as exc:  # a 5xx from the token endpoint
            status, retry_after = getattr(_local, "last_answer", (None, None))
            prob = problem(
                "throttled" if status == 429 else "server_error",
                "%s: %s" % (type(exc).__name__, exc),
                status=status,
            )
            if retry_after:
                prob.retry_after = parse_retry_after(retry_after)
            raise self._fail(prob) from None
        except Exception as exc:  # noqa: BLE001 - DNS, TLS, timeouts, dropped connections
            raise self._fail(from_exception(exc, self.authority)) from None

    def _forget_http_answers(self):
        for credential in self._credentials:
            _http_caches.get((self.authority, self.client_id, credential.key, self.verify), {}).clear()

    def _credential_order(self):
        now = time.monotonic()
        fresh = [c for c in self._credentials if _bad_secrets.get(c.key, 0) <= now]
        stale = [c for c in self._credentials if c not in fresh]
        return fresh + stale

    def token(self, resource, fresh=False):
        """An access token for ``"graph"`` or ``"intune"``, from msal's cache while it is valid.

        ``fresh=True`` asks Entra for a new one (the connection test: a cached token proves nothing
        about the secret today).
        """
        scope = self.cloud.graph_scope if resource == "graph" else self.cloud.intune_scope
        attempt = 0
        while True:
            try:
                return self._token_once(scope, fresh)
            except IntuneError as exc:
                if not self._may_retry(exc.problem, attempt):
                    raise
                self._backoff(attempt, exc.retry_after)
                # msal replays a 429 / 5xx of the token endpoint from its HTTP cache for Retry-After (or 5 s);
                # the wait above already honoured it, so the retry must reach Entra.
                self._forget_http_answers()
                attempt += 1

    def _token_once(self, scope, fresh=False):
        order = self._credential_order()
        for index, credential in enumerate(order):  # a client secret or a certificate
            app = self._call_msal(lambda credential=credential: self._app(credential))
            if fresh:
                # msal replays an error answer (a 400 for 60 s) from its HTTP cache, so a consent granted a
                # moment ago would still fail: a connection test forgets those and any cached token.
                self._forget_http_answers()
                cache = app.token_cache
                for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=[scope])):
                    cache.remove_at(item)
            _local.last_answer = (None, None)
            try:
                result = self._call_msal(lambda app=app: app.acquire_token_for_client(scopes=[scope]))
            except IntuneError as exc:
                if exc.code == "unexpected":
                    # msal keeps a non-OAuth error answer (a JSON "error" object, as a throttling front end may
                    # send) in its telemetry and then fails every later request of that app with a TypeError:
                    # forget the app, the next attempt builds a fresh one.
                    self._forget_app(credential)
                raise
            if "access_token" in result:
                _bad_secrets.pop(credential.key, None)
                self._learn_tenant_id(result["access_token"])
                return result["access_token"]
            status, retry_after = getattr(_local, "last_answer", (None, None))
            if isinstance(result.get("error"), dict):
                self._forget_app(credential)  # a non-OAuth answer (a throttling front end) poisons the msal app
            prob = from_entra(result, status=status)
            if retry_after and prob.retryable:
                prob.retry_after = parse_retry_after(retry_after)
            if prob.code in NEXT_CREDENTIAL_CODES and index + 1 < len(order):
                # Rollover: Entra keeps old and new credentials valid together; try the next one.
                logger.warning(
                    "Entra rejected credential %d of %d (%s) for %s (%s); trying the next one.",
                    index + 1, len(order), credential.kind, self.entra_tenant, prob.code,
                )
                _bad_secrets[credential.key] = time.monotonic() + BAD_SECRET_TTL
                continue
            raise self._fail(prob)
        raise self._fail(problem("no_secret"))  # pragma: no cover - the loop always returns or raises

    def _forget_app(self, credential):
        with _lock:
            key = (self.authority, self.client_id, credential.key, self.verify)
            _apps.pop(key, None)
            _http_caches.pop(key, None)

    def _forget_token(self, token):
        """Drop a rejected access token from msal's cache so the next call gets a fresh one."""
        for app in list(_apps.values()):
            cache = app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if item.get("secret") == token:
                    cache.remove_at(item)

    def _learn_tenant_id(self, access_token):
        tid = jwt_claims(access_token).get("tid")
        if tid and tid != self._tenant_id:
            self._tenant_id = tid
            if self._on_tenant_id:
                self._on_tenant_id(tid)

    @property
    def tenant_id(self):
        """The tenant's GUID: known from the configuration, or learned from a token's ``tid`` claim."""
        if not self._tenant_id:
            self.token("intune")
        return self._tenant_id

    # -- HTTP --------------------------------------------------------------------------------

    def _may_retry(self, prob, attempt):
        if not prob.retryable or attempt >= self.max_retries:
            return False
        return prob.retry_after is None or prob.retry_after <= self.max_retry_wait

    def _backoff(self, attempt, retry_after):
        if retry_after is not None:
            wait = retry_after
        else:  # exponential with jitter: 0.5 s, 1 s, 2 s, … capped
            wait = min(self.max_retry_wait, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
        self.waits.append(wait)
        logger.info("Microsoft asked to wait or failed; retrying in %.1f s", wait)
        time.sleep(wait)

    def request(self, method, url, resource, *, service, json_body=None, params=None):
        """One call with a token for ``resource``; retries 429 / 5xx / network errors, and a 401 once."""
        session = _session(self.verify, self.timeout)
        attempt = 0
        refreshed = False
        while True:
            token = self.token(resource)
            try:
                response = session.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers={
                        "Authorization": "Bearer " + token,
                        "Accept": "application/json",
                        "client-request-id": str(uuid.uuid4()),
                    },
                )
            except requests.RequestException as exc:
                prob = from_exception(exc, url)
                if self._may_retry(prob, attempt):
                    self._backoff(attempt, None)
                    attempt += 1
                    continue
                raise self._fail(prob) from None
            if response.status_code == 401 and not refreshed:
                self._forget_token(token)
                refreshed = True
                continue
            if response.status_code == 429 or response.status_code >= 500:
                prob = from_response(response, service)
                if self._may_retry(prob, attempt):
                    self._backoff(attempt, prob.retry_after)
                    attempt += 1
                    continue
                raise self._fail(prob)
            return response

    def _error(self, response, service, code=None):
        return self._fail(from_response(response, service, code))

    # -- discovery ---------------------------------------------------------------------------

    def endpoints(self):
        """The partner service URIs from Graph (cached 24 h): PartnerTenantDataSync and PartnerDeviceDataSync."""
        key = (self.cloud.graph, self.entra_tenant.lower(), self.client_id)
        cached = _discovery.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        graph = self.cloud.graph + "/v1.0"
        response = self.request(
            "GET",
            graph + "/servicePrincipals",
            "graph",
            service="graph",
            params={"$filter": "appId eq '%s'" % INTUNE_APP_ID, "$select": "id,appId,displayName"},
        )
        if response.status_code == 403:
            raise self._error(response, "graph", "discovery_denied")
        if response.status_code != 200:
            raise self._error(response, "graph")
        principals = response.json().get("value") or []
        if not principals:
            raise self._fail(problem("intune_not_found", "no service principal with appId %s" % INTUNE_APP_ID))
        response = self.request(
            "GET", "%s/servicePrincipals/%s/endpoints" % (graph, principals[0]["id"]), "graph", service="graph"
        )
        if response.status_code == 403:
            raise self._error(response, "graph", "discovery_denied")
        if response.status_code != 200:
            raise self._error(response, "graph")
        uris = {item.get("providerName"): item.get("uri") for item in response.json().get("value") or []}
        missing = [name for name in (TENANT_SYNC, DEVICE_SYNC) if not uris.get(name)]
        if missing:
            raise self._fail(problem("endpoints_missing", "missing: %s" % ", ".join(missing)))
        endpoints = Endpoints(uris[TENANT_SYNC].rstrip("/"), uris[DEVICE_SYNC].rstrip("/"))
        with _lock:
            _discovery[key] = (time.monotonic() + DISCOVERY_TTL, endpoints)
        return endpoints

    # -- provisioning ------------------------------------------------------------------------

    def _partner_tenant_url(self):
        return "%s/PartnerTenants(guid'%s')" % (self.endpoints().tenant_sync, self.tenant_id)

    def _set_provisioned(self, body):
        response = self.request(
            "PUT",
            self._partner_tenant_url(),
            "intune",
            service="intune",
            params={"api-version": TENANT_API_VERSION},
            json_body=body,
        )
        if response.status_code in (401, 403):
            raise self._error(response, "intune", "provisioning_refused")
        if response.status_code not in (200, 201, 202, 204):
            raise self._error(response, "intune")
        return _json_or_empty(response)

    def provision(self, enrollment_url, remediation_url):
        """Turn the partner integration on for this tenant (Provisioned 1) with the end users' landing URLs."""
        return self._set_provisioned(
            {"Provisioned": 1, "PartnerEnrollmentUrl": enrollment_url, "PartnerRemediationUrl": remediation_url}
        )

    def deprovision(self):
        """Turn it off (Provisioned 2); Intune stops expecting reports. The portal keeps the configuration."""
        return self._set_provisioned({"Provisioned": 2})

    def provisioning_state(self):
        """Intune's PartnerTenants record: 1 provisioned, 2 deprovisioned, None when never provisioned."""
        response = self.request(
            "GET",
            self._partner_tenant_url(),
            "intune",
            service="intune",
            params={"api-version": TENANT_API_VERSION},
        )
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise self._error(response, "intune", "provisioning_refused")
        if response.status_code != 200:
            raise self._error(response, "intune")
        return _json_or_empty(response).get("Provisioned")

    def ensure_partner_policy(self, group_ids, display_name=DEFAULT_POLICY_NAME, description=""):
        """Create the partner-managed macOS compliance policy (409: it exists) and assign it to the groups."""
        base = self.endpoints().tenant_sync + "/PartnerCompliancePolicies"
        params = {"api-version": TENANT_API_VERSION}
        body = {
            "DisplayName": display_name,
            "Description": description or "Compliance of Macs is decided by the Jamf Pro compliance portal.",
            "Platform": "macOS",
            "PartnerManagedCompliance": True,
        }
        response = self.request("POST", base, "intune", service="intune", params=params, json_body=body)
        created = response.status_code in (200, 201)
        if created:
            policy_id = _entity_id(_json_or_empty(response))
        elif response.status_code == 409:  # it exists, perhaps renamed by an Intune admin: find it
            policy_id = self._find_policy(base, display_name)
        else:
            raise self._error(response, "intune")
        assigned = [str(g) for g in group_ids or []]
        if assigned:
            response = self.request(
                "POST",
                "%s(guid'%s')/Assign" % (base, policy_id),
                "intune",
                service="intune",
                params=params,
                json_body={"assignments": assigned},
            )
            if response.status_code not in (200, 201, 202, 204):
                raise self._error(response, "intune")
        return PolicyResult(policy_id, created, assigned)

    def _find_policy(self, base, display_name):
        """The partner-managed macOS policy after a 409: the one of our name, else the one whatever its name."""
        response = self.request(
            "GET", base, "intune", service="intune", params={"api-version": TENANT_API_VERSION}
        )
        if response.status_code != 200:
            raise self._error(response, "intune")
        items = [item for item in _json_or_empty(response).get("value") or [] if isinstance(item, dict)]
        for item in items:
            if item.get("DisplayName") == display_name:
                return _entity_id(item)
        ours = [
            item for item in items
            if item.get("PartnerManagedCompliance") is True and str(item.get("Platform", "")).lower() == "macos"
        ]
        if ours:
            if len(ours) > 1:
                logger.warning("%s: %d partner-managed macOS policies; using %r", self.entra_tenant, len(ours),
                               ours[0].get("DisplayName"))
            return _entity_id(ours[0])
        raise self._fail(problem(
            "not_found", "Intune answered 409 but lists no partner-managed macOS policy (looked for %r)" % display_name
        ))

    # -- device state ------------------------------------------------------------------------

    def upload(self, message_id, entities, upload_time=None):
        """PUT one DataUploadMessage. The same ``message_id`` resent is applied once by Intune.

        The body comes from ``payloads.upload_body`` (Content is a JSON *string*; ``entities`` may be that
        string already, as the delivery passes the stored payloads through without decoding them).
        """
        message_id = str(uuid.UUID(str(message_id)))
        body = upload_body(self.tenant_id, entities, upload_time or datetime.datetime.now(datetime.UTC))
        response = self.request(
            "PUT",
            "%s/DataUploadMessages(guid'%s')" % (self.endpoints().device_sync, message_id),
            "intune",
            service="intune",
            params={"api-version": DEVICE_API_VERSION},
            json_body=body,
        )
        if response.status_code not in (200, 201, 202, 204):
            raise self._error(response, "intune")
        return _json_or_empty(response)

    def message_status(self, message_id):
        """Intune's verdict on a message: Status Completed or Failed with ErrorCode / ErrorDetail.

        ``NotFound`` when Intune does not know the ID (never received: send it again).
        """
        message_id = str(uuid.UUID(str(message_id)))
        response = self.request(
            "GET",
            "%s/DataUploadMessages(guid'%s')" % (self.endpoints().device_sync, message_id),
            "intune",
            service="intune",
            params={"api-version": DEVICE_API_VERSION},
        )
        if response.status_code == 404:
            return MessageStatus(message_id, "NotFound")
        if response.status_code != 200:
            raise self._error(response, "intune")
        body = _json_or_empty(response)
        return MessageStatus(
            message_id,
            str(body.get("Status") or ""),
            str(body.get("ErrorCode") or ""),
            str(body.get("ErrorDetail") or ""),
            body,
        )

    # -- Graph: delete and read back -----------------------------------------------------------

    def delete_device(self, entra_device_id):
        """Delete a Mac from Entra ID and from Intune; returns what was found and deleted in each."""
        graph = self.cloud.graph + "/v1.0"
        entra_device_id = str(uuid.UUID(str(entra_device_id)))
        response = self.request("DELETE", "%s/devices(deviceId='%s')" % (graph, entra_device_id), "graph",
                                service="graph")
        if response.status_code in (200, 204):
            entra = "deleted"
        elif response.status_code == 404:
            entra = "not_found"
        else:
            raise self._error(response, "graph")
        deleted = []
        for device in self.managed_devices(azure_ad_device_id=entra_device_id):
            response = self.request(
                "DELETE", "%s/deviceManagement/managedDevices/%s" % (graph, device["id"]), "graph", service="graph"
            )
            if response.status_code in (200, 204):
                deleted.append(device["id"])
            elif response.status_code != 404:
                raise self._error(response, "graph")
        return {"entra": entra, "intune": "deleted" if deleted else "not_found", "managed_device_ids": deleted}

    def managed_devices(self, azure_ad_device_id=None, page_size=999):
        """Intune's managed devices (Graph, paged), optionally only the one with that Entra device ID."""
        params = {"$top": str(page_size)}
        if azure_ad_device_id:
            params["$filter"] = "azureADDeviceId eq '%s'" % azure_ad_device_id
        url = self.cloud.graph + "/v1.0/deviceManagement/managedDevices"
        while url:
            response = self.request("GET", url, "graph", service="graph", params=params)
            if response.status_code != 200:
                raise self._error(response, "graph")
            body = response.json()
            yield from body.get("value") or []
            url, params = body.get("@odata.nextLink"), None


    # -- Graph: the Intune side of the partner -------------------------------------------------

    def compliance_partners(self):
        """The tenant's compliance management partners as Intune lists them (Graph v1.0).

        ``GET /deviceManagement/complianceManagementPartners``; Microsoft's Graph reference names the
        application permission DeviceManagementServiceConfig.Read.All (or .ReadWrite.All).
        """
        response = self.request(
            "GET", self.cloud.graph + "/v1.0/deviceManagement/complianceManagementPartners", "graph", service="graph"
        )
        if response.status_code == 403:
            raise self._error(response, "graph", "partners_denied")
        if response.status_code != 200:
            raise self._error(response, "graph")
        return [item for item in response.json().get("value") or [] if isinstance(item, dict)]


def _json_or_empty(response):
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _entity_id(body):
    value = body.get("Id") or body.get("id") or ""
    return str(value)
