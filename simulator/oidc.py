"""Sign in with Microsoft: Entra ID's OpenID Connect endpoints (v2.0), for the portal's staff sign-in.

Mounted under ``/oidc`` so it never meets ``simulator/microsoft.py``'s client-credential routes; the
portal's ``PORTAL_SSO_AUTHORITY`` points at ``<simulator>/oidc`` instead of
``https://login.microsoftonline.com``. ``<tenant>`` is the Entra tenant ID (a GUID; a name is turned
into a stable GUID):

- ``GET  /oidc/<tenant>/v2.0/.well-known/openid-configuration``
- ``GET  /oidc/<tenant>/oauth2/v2.0/authorize``  the account picker (an HTML form, like Entra's page)
- ``POST /oidc/<tenant>/oauth2/v2.0/authorize``  signs the account in, redirects to ``redirect_uri``
  with ``code`` and ``state`` (or ``error`` / ``error_description``, as Entra does)
- ``POST /oidc/<tenant>/oauth2/v2.0/token``      authorization code (+ PKCE) for an access token and
  an RS256-signed ID token (``iss``, ``aud``, ``tid``, ``oid``, ``sub``, ``nonce``,
  ``preferred_username``, ``email``, ``name``, ``iat``/``nbf``/``exp``, ``ver`` 2.0)
- ``GET  /oidc/<tenant>/discovery/v2.0/keys``    the JWKS that verifies them

Clients and users come from ``register_client()`` / ``register_user()`` (tests) or the control
endpoints ``POST /_sim/oidc/clients`` and ``POST /_sim/oidc/users`` (the demo).

Fault knobs (``sim.set_faults(...)``), each applied to the next ID tokens issued:

- ``oidc_token_tenant``: a tenant ID to issue the token for instead (``tid`` and ``iss`` of that
  tenant: what a user of another Entra tenant brings)
- ``oidc_bad_signature``: sign with a key that is not in the JWKS (same ``kid``)
- ``oidc_nonce``: put this ``nonce`` in the token instead of the one asked for
- ``oidc_expired``: issue a token that expired an hour ago
- ``oidc_claims``: a dict of claims to set (or, with a value of None, remove) in the token
"""

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from simulator.app import SERVICE_FACTORIES
from simulator.core import HttpError, Response

PREFIX = "/oidc"
SEG = r"(?P<tenant>[^/]+)"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NAMESPACE = uuid.UUID("0b6f2c61-3f57-4ad2-9a42-6c1f6a1d7e55")
CODE_LIFETIME = 300
TOKEN_LIFETIME = 3600


def tenant_id(name):
    """The tenant ID for a path segment: a GUID as it is, a name as a stable GUID."""
    return name.lower() if GUID_RE.match(name) else str(uuid.uuid5(NAMESPACE, "tenant:" + name.lower()))


def _aad_error(status, code, message):
    return HttpError(
        status,
        {
            "error": code,
            "error_description": message,
            "error_codes": [int(code[5:])] if code.startswith("AADSTS") else [],
        },
    )


class OidcService:
    """Entra's sign-in endpoints for one or more tenants, with registered clients and users."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "sim-" + secrets.token_hex(8)
        self.sim = None
        self.reset()

    def reset(self):
        with self.lock:
            self.clients = {}  # client_id -> {"tenant", "secret", "redirect_uris"}
            self.users = {}  # (tenant id, upn lower) -> {"oid", "upn", "name", "email"}
            self.codes = {}  # code -> what the token endpoint needs
            self.issued = []  # claims of every ID token issued (tests read them)

    def snapshot(self):
        with self.lock:
            return {"clients": sorted(self.clients), "users": ["%s/%s" % key for key in self.users]}

    # -- registration --------------------------------------------------------------------------

    def register_client(self, tenant, client_id, secret, redirect_uris=()):
        with self.lock:
            self.clients[client_id] = {
                "tenant": tenant_id(tenant),
                "secret": secret,
                "redirect_uris": list(redirect_uris),
            }

    def register_user(self, tenant, upn, name=None, email=None, oid=None):
        tid = tenant_id(tenant)
        user = {
            "oid": oid or str(uuid.uuid5(NAMESPACE, "user:%s:%s" % (tid, upn.lower()))),
            "upn": upn,
            "name": name or upn.split("@")[0],
            "email": email,
        }
        with self.lock:
            self.users[(tid, upn.lower())] = user
        return user

    # -- helpers -------------------------------------------------------------------------------

    def issuer(self, tid):
        return "%s%s/%s/v2.0" % (self.sim.base_url, PREFIX, tid)

    def _client(self, client_id, redirect_uri=None):
        client = self.clients.get(client_id or "")
        if client is None:
            raise _aad_error(400, "AADSTS700016", "Application with identifier '%s' was not found." % client_id)
        if redirect_uri is not None and client["redirect_uris"] and redirect_uri not in client["redirect_uris"]:
            raise _aad_error(400, "AADSTS50011", "The redirect URI '%s' does not match." % redirect_uri)
        return client

    def _id_token(self, tid, client_id, user, nonce):
        extra = self.sim.faults.extra
        now = int(time.time())
        token_tid = tenant_id(extra["oidc_token_tenant"]) if extra.get("oidc_token_tenant") else tid
        if extra.get("oidc_expired"):
            now -= 2 * TOKEN_LIFETIME
        claims = {
            "ver": "2.0",
            "iss": self.issuer(token_tid),
            "aud": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "tid": token_tid,
            "oid": user["oid"],
            # Entra's sub is pairwise: the same user has another sub in each application.
            "sub": base64.urlsafe_b64encode(hashlib.sha256((user["oid"] + client_id).encode()).digest())[:43].decode(),
            "preferred_username": user["upn"],
            "name": user["name"],
            "nonce": extra.get("oidc_nonce") or nonce,
        }
        if nonce is None and not extra.get("oidc_nonce"):
            del claims["nonce"]
        if user.get("email"):
            claims["email"] = user["email"]
        for name, value in (extra.get("oidc_claims") or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.other_key if extra.get("oidc_bad_signature") else self.key
        self.issued.append(claims)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    # -- routes --------------------------------------------------------------------------------

    def install(self, sim):
        self.sim = sim

        @sim.route("GET", PREFIX + "/" + SEG + r"/v2\.0/\.well-known/openid-configuration", name="oidc_config")
        def configuration(request, tenant):
            tid = tenant_id(tenant)
            base = "%s%s/%s" % (sim.base_url, PREFIX, tid)
            return {
                "issuer": self.issuer(tid),
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "token_endpoint": base + "/oauth2/v2.0/token",
                "jwks_uri": base + "/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "name",
                    "preferred_username",
                    "email",
                    "oid",
                    "tid",
                    "ver",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
                "tenant_region_scope": "EU",
            }

        @sim.route("GET", PREFIX + "/" + SEG + r"/discovery/v2\.0/keys", name="oidc_keys")
        def keys(request, tenant):
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            jwk.update(kid=self.kid, use="sig", alg="RS256")
            return {"keys": [jwk]}

        @sim.route("GET", PREFIX + "/" + SEG + r"/oauth2/v2\.0/authorize", name="oidc_authorize_page")
        def authorize_page(request, tenant):
            self._check_authorize(request.query, tenant)
            hidden = "".join(
                '<input type="hidden" name="%s" value="%s">' % (html.escape(k), html.escape(v[-1]))
                for k, v in request.query.items()
            )
            hint = html.escape(request.arg("login_hint") or "")
            page = (
                "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Sign in to your account</title>"
                "</head><body><h1>Sign in</h1><p>Microsoft Entra ID (simulated)</p>"
                "<form method='post'>%s<label for='upn'>Email, phone, or Skype</label> "
                "<input id='upn' name='upn' type='email' value='%s' autofocus> "
                "<button type='submit' id='signin'>Sign in</button></form></body></html>" % (hidden, hint)
            )
            return Response(200, page, {"Content-Type": "text/html; charset=utf-8"})

        @sim.route("POST", PREFIX + "/" + SEG + r"/oauth2/v2\.0/authorize", name="oidc_authorize")
        def authorize(request, tenant):
            form = {k: [v] for k, v in request.form().items()}
            params = self._check_authorize(form, tenant)
            tid = tenant_id(tenant)
            upn = (form.get("upn") or [""])[-1].strip()
            with self.lock:
                user = self.users.get((tid, upn.lower()))
            if user is None:
                page = (
                    "<!DOCTYPE html><title>Sign in</title><p id='error'>AADSTS50034: The user account %s does not "
                    "exist in the %s directory.</p>" % (html.escape(upn), html.escape(tid))
                )
                return Response(400, page, {"Content-Type": "text/html; charset=utf-8"})
            code = secrets.token_urlsafe(32)
            with self.lock:
                self.codes[code] = {
                    "tid": tid,
                    "client_id": params["client_id"],
                    "redirect_uri": params["redirect_uri"],
                    "user": user,
                    "nonce": params.get("nonce"),
                    "challenge": params.get("code_challenge"),
                    "challenge_method": params.get("code_challenge_method") or "plain",
                    "expires": time.time() + CODE_LIFETIME,
                    "scope": params.get("scope", ""),
                }
            answer = {"code": code}
            if params.get("state"):
                answer["state"] = params["state"]
            return self._redirect(params["redirect_uri"], answer)

        @sim.route("POST", PREFIX + "/" + SEG + r"/oauth2/v2\.0/token", name="oidc_token")
        def token(request, tenant):
            form = request.form()
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = request.headers.get("Authorization", "")
            if basic.lower().startswith("basic "):
                decoded = base64.b64decode(basic[6:]).decode()
                client_id, _, secret = decoded.partition(":")
                client_id, secret = urllib.parse.unquote(client_id), urllib.parse.unquote(secret)
            client = self._client(client_id)
            if not secret or not secrets.compare_digest(secret, client["secret"]):
                raise _aad_error(401, "AADSTS7000215", "Invalid client secret provided.")
            if form.get("grant_type") != "authorization_code":
                raise _aad_error(400, "AADSTS70003", "The app requested an unsupported grant type.")
            with self.lock:
                grant = self.codes.pop(form.get("code") or "", None)
            if grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id:
                raise _aad_error(400, "AADSTS70008", "The provided authorization code is invalid or has expired.")
            if grant["tid"] != tenant_id(tenant):
                raise _aad_error(400, "AADSTS70008", "The code was issued for another tenant.")
            if form.get("redirect_uri") != grant["redirect_uri"]:
                raise _aad_error(400, "AADSTS50148", "The redirect_uri does not match the one of the authorization.")
            if grant["challenge"]:
                verifier = form.get("code_verifier") or ""
                if grant["challenge_method"] == "S256":
                    verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    verifier = verifier.decode()
                if not secrets.compare_digest(verifier, grant["challenge"]):
                    raise _aad_error(400, "AADSTS501481", "The code_verifier does not match the code_challenge.")
            with self.lock:
                id_token = self._id_token(grant["tid"], client_id, grant["user"], grant["nonce"])
            return {
                "token_type": "Bearer",
                "scope": grant["scope"],
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": secrets.token_urlsafe(48),
                "id_token": id_token,
            }

        @sim.route("POST", r"/_sim/oidc/clients", name="oidc_control_clients")
        def control_clients(request):
            body = request.json() or {}
            try:
                self.register_client(
                    body["tenant"], body["client_id"], body["client_secret"], body.get("redirect_uris", ())
                )
            except (KeyError, TypeError) as exc:
                raise HttpError(400, {"error": {"code": "BadRequest", "message": "missing %s" % exc}}) from None
            return {"registered": body["client_id"]}

        @sim.route("POST", r"/_sim/oidc/users", name="oidc_control_users")
        def control_users(request):
            body = request.json() or {}
            try:
                user = self.register_user(body["tenant"], body["upn"], body.get("name"), body.get("email"))
            except (KeyError, TypeError, AttributeError) as exc:
                raise HttpError(400, {"error": {"code": "BadRequest", "message": "missing %s" % exc}}) from None
            return {"registered": user}

    def _check_authorize(self, query, tenant):
        params = {k: v[-1] for k, v in query.items() if v}
        client = self._client(params.get("client_id"), params.get("redirect_uri", ""))
        if client["tenant"] != tenant_id(tenant):
            raise _aad_error(400, "AADSTS700016", "The application was not found in the directory %s." % tenant)
        if params.get("response_type") != "code":
            raise _aad_error(400, "AADSTS700054", "response_type 'code' is required here.")
        if "openid" not in params.get("scope", "").split():
            raise _aad_error(400, "AADSTS90014", "The scope must include openid.")
        return params

    @staticmethod
    def _redirect(uri, params):
        separator = "&" if urllib.parse.urlsplit(uri).query else "?"
        return Response(302, b"", {"Location": uri + separator + urllib.parse.urlencode(params)})


SERVICE_FACTORIES.append(OidcService)
