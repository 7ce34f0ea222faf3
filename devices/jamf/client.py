"""The Jamf Pro API client: OAuth client credentials and the computers-inventory endpoint.

One client per tenant (``JamfClient.from_tenant(tenant)``). Thread-safe: pages are fetched on up
to ``MAX_CONNECTIONS`` threads, which is also the size of the connection pool, because Jamf asks
integrators for at most 5 concurrent connections. Every request has a timeout; 429 and 5xx answers
and dropped connections are retried with exponential backoff that honours ``Retry-After``; a 401
is retried once with a fresh token.
"""

import concurrent.futures
import datetime
import logging
import threading
import time
import urllib.parse

import requests

from portal.http import VerifyingSession, ca_bundle, outbound_refusal, parse_retry_after

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 5  # Jamf Pro API guidance: at most 5 concurrent connections per integration
DEFAULT_TIMEOUT = (5, 60)  # connect, read (seconds)
DEFAULT_PAGE_SIZE = 500
MAX_RETRIES = 4
MAX_BACKOFF = 60.0  # never sleep longer than this between tries, whatever Retry-After says
TOKEN_MARGIN = 60  # renew a token this many seconds before it expires
RETRY_STATUSES = {429, 500, 502, 503, 504}

# The sections the mapping reads (devices/jamf/mapping.py; seed appendix table).
SECTIONS = (
    "GENERAL", "HARDWARE", "OPERATING_SYSTEM", "SECURITY", "DISK_ENCRYPTION", "LOCAL_USER_ACCOUNTS",
    "USER_AND_LOCATION", "APPLICATIONS",
)
# Jamf Pro 11.30 added /api/v4/computers-inventory (general.lastContactTime became general.lastContact).
V4_SINCE = (11, 30)
# Jamf Pro API: POST /api/oauth/token; some versions and proxies only answer the versioned path.
TOKEN_PATHS = ("/api/oauth/token", "/api/v1/oauth/token")


class JamfError(Exception):
    """A Jamf Pro API call failed; ``status`` is the HTTP status (None for a network failure)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class JamfAuthError(JamfError):
    """Jamf Pro refused the API client's credentials or role."""


def _session(verify, timeout):
    """One keep-alive session, at most MAX_CONNECTIONS connections (Jamf's limit for integrators)."""
    # The Jamf Pro URL is set by tenant admins: connect only to public (or operator allow-listed) addresses.
    session = VerifyingSession(verify, timeout, pool_maxsize=MAX_CONNECTIONS, pool_block=True, guard_outbound=True)
    session.headers["User-Agent"] = "mac-compliance-portal"
    session.headers["Accept"] = "application/json"
    return session


def _retry_after(response, attempt):
    """Seconds to wait before the next try: Retry-After (seconds or an HTTP date) or exponential backoff."""
    wait = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
    return min(wait if wait is not None else 0.5 * 2**attempt, MAX_BACKOFF)


def parse_version(text):
    """(major, minor) from a Jamf Pro version string such as ``11.30.1-t1712345678``; None if unreadable."""
    try:
        major, minor = str(text).split("-", 1)[0].split(".")[:2]
        return int(major), int(minor)
    except (ValueError, TypeError):
        return None


def rsql_quote(value):
    """A value quoted for a Jamf RSQL filter."""
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def report_date_filter(since):
    """RSQL filter for records whose ``general.reportDate`` is at or after ``since`` (an aware datetime)."""
    stamp = since.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "general.reportDate>=%s" % rsql_quote(stamp)


class JamfClient:
    """A Jamf Pro server reached with an API client (client credentials)."""

    def __init__(self, base_url, client_id, client_secret, api_version="auto", verify=None,
                 timeout=DEFAULT_TIMEOUT, max_retries=MAX_RETRIES, page_size=DEFAULT_PAGE_SIZE,
                 max_connections=MAX_CONNECTIONS, sleep=time.sleep):
        if not base_url:
            raise JamfError("No Jamf Pro URL is set.")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_version = api_version if api_version in ("v3", "v4") else None
        if verify is None:
            verify = ca_bundle()
        self.session = _session(verify, timeout)
        self.max_retries = max_retries
        self.page_size = page_size
        self.max_connections = max(1, min(max_connections, MAX_CONNECTIONS))
        self._sleep = sleep
        self._token = None
        self._token_expires = 0.0
        self._token_path = None
        self._lock = threading.Lock()

    @classmethod
    def from_tenant(cls, tenant, **kwargs):
        """The client for a tenant's Jamf Pro; raises JamfError when the tenant has no API credentials."""
        if not tenant.has_jamf_api:
            raise JamfError("Tenant %s has no Jamf Pro URL and API client credentials." % tenant.slug)
        return cls(tenant.jamf_url, tenant.jamf_client_id, tenant.jamf_client_secret,
                   api_version=tenant.jamf_api_version, **kwargs)

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<JamfClient %s>" % self.base_url

    # -- token ------------------------------------------------------------------------------

    def token(self, force=False):
        """A valid access token, fetched or renewed when it is within TOKEN_MARGIN of expiry."""
        with self._lock:
            if not force and self._token and time.monotonic() < self._token_expires:
                return self._token
            self._token, lifetime = self._fetch_token()
            # Renew a minute early, or halfway through a short-lived token.
            margin = min(TOKEN_MARGIN, lifetime / 2)
            self._token_expires = time.monotonic() + lifetime - margin
            return self._token

    def _fetch_token(self):
        data = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._client_secret}
        paths = (self._token_path,) if self._token_path else TOKEN_PATHS
        response = None
        for path in paths:
            response = self._send("POST", path, data=data, auth=False)
            if response.status_code == 404 and path != paths[-1]:
                continue  # this Jamf Pro serves the other token path
            break
        if response.status_code in (400, 401, 403):
            raise JamfAuthError(
                "Jamf Pro refused the API client (HTTP %d): check the client ID and secret, and that the API "
                "client is enabled." % response.status_code, response.status_code)
        if response.status_code != 200:
            raise JamfError("Jamf Pro token request failed (HTTP %d)." % response.status_code, response.status_code)
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError):
            raise JamfError("Jamf Pro answered the token request without an access token.", 200) from None
        self._token_path = path
        return token, max(lifetime, 1.0)

    # -- requests ---------------------------------------------------------------------------

    def _send(self, method, path, auth=True, **kwargs):
        """One API call with retries; returns the final response (any status) or raises JamfError."""
        url = self.base_url + path
        refreshed = False
        attempt = 0
        while True:
            headers = {"Authorization": "Bearer %s" % self.token()} if auth else {}
            try:
                response = self.session.request(method, url, headers=headers, **kwargs)
            except requests.RequestException as exc:
                refused = outbound_refusal(exc)
                if refused is not None:
                    logger.warning("Jamf Pro %s %s refused: %s", method, path, refused)
                    raise JamfError("The Jamf Pro URL's host %s resolves to %s." % (refused.host, refused.reason)) \
                        from None
                if attempt >= self.max_retries:
                    # Tenant admins see one message for every connection-level failure (refused, timed out,
                    # TLS): which one it was would tell open ports from closed ones. The log has it.
                    logger.warning("Jamf Pro at %s did not answer %s %s: %r", self.base_url, method, path, exc)
                    raise JamfError(
                        "Jamf Pro at %s could not be reached over HTTPS (no connection, a timeout or a TLS "
                        "failure; the portal's log has the details)." % self.base_url
                    ) from None
                delay = _retry_after(None, attempt)
                logger.info("Jamf Pro %s %s failed (%s); retrying in %.1fs", method, path,
                            exc.__class__.__name__, delay)
                self._sleep(delay)
                attempt += 1
                continue
            if auth and response.status_code == 401 and not refreshed:
                # A token revoked or expired early: fetch a new one, once.
                refreshed = True
                self.token(force=True)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                delay = _retry_after(response, attempt)
                logger.info("Jamf Pro %s %s answered %d; retrying in %.1fs", method, path,
                            response.status_code, delay)
                self._sleep(delay)
                attempt += 1
                continue
            return response

    def get_json(self, path, params=None):
        response = self._send("GET", path, params=params)
        if response.status_code == 401:
            raise JamfAuthError("Jamf Pro refused the token for %s." % path, 401)
        if response.status_code == 403:
            raise JamfAuthError(
                "The Jamf Pro API role lacks a privilege for %s (it needs Read Computers)." % path, 403)
        if response.status_code != 200:
            raise JamfError("Jamf Pro answered %d to GET %s." % (response.status_code, path), response.status_code)
        try:
            return response.json()
        except ValueError:
            raise JamfError("Jamf Pro answered GET %s with something that is not JSON." % path, 200) from None

    # -- version ----------------------------------------------------------------------------

    def jamf_pro_version(self):
        """The server's version string (GET /api/v1/jamf-pro-version)."""
        return self.get_json("/api/v1/jamf-pro-version").get("version", "")

    def inventory_version(self):
        """'v3' or 'v4': as set for the tenant, else detected from the server's version (then by probing)."""
        if self.api_version:
            return self.api_version
        version = None
        try:
            version = parse_version(self.jamf_pro_version())
        except JamfAuthError:
            raise
        except JamfError as exc:
            if exc.status not in (200, 404):
                raise  # an unavailable server tells nothing about its version: do not guess
            logger.info("Jamf Pro version unknown (%s); probing the v4 endpoint", exc)
        if version is not None:
            self.api_version = "v4" if version >= V4_SINCE else "v3"
            return self.api_version
        response = self._send("GET", "/api/v4/computers-inventory", params={"page": 0, "page-size": 1})
        if response.status_code == 200:
            self.api_version = "v4"
        elif response.status_code == 404:
            self.api_version = "v3"
        else:
            raise JamfError("Jamf Pro answered %d to GET /api/v4/computers-inventory." % response.status_code,
                            response.status_code)
        return self.api_version

    # -- computers-inventory ----------------------------------------------------------------

    def _inventory_params(self, page, page_size, sections, rsql, sort):
        params = [("section", s) for s in sections]
        params += [("page", page), ("page-size", page_size), ("sort", sort)]
        if rsql:
            params.append(("filter", rsql))
        return params

    def computers_page(self, page=0, page_size=None, sections=SECTIONS, rsql=None, sort="id:asc"):
        """One page: the parsed ``{"totalCount", "results"}`` body."""
        path = "/api/%s/computers-inventory" % self.inventory_version()
        body = self.get_json(path, self._inventory_params(page, page_size or self.page_size, sections, rsql, sort))
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise JamfError("Jamf Pro answered %s with no results list." % path, 200)
        if not isinstance(body.get("totalCount"), int):
            raise JamfError("Jamf Pro answered %s without a totalCount." % path, 200)
        return body

    def iter_pages(self, sections=SECTIONS, rsql=None, page_size=None, sort="id:asc"):
        """Yield every page in order, fetching up to ``max_connections`` pages at once.

        The first page tells the total; the rest are fetched concurrently and yielded in order, so a
        caller sees each page's ``totalCount`` (and can tell when the fleet changed while paging).
        """
        page_size = page_size or self.page_size
        first = self.computers_page(0, page_size, sections, rsql, sort)
        yield first
        total = first["totalCount"]
        pages = -(-total // page_size) if total else 0
        if pages <= 1:
            return
        self.token()  # one token fetch before the threads start
        with concurrent.futures.ThreadPoolExecutor(self.max_connections, thread_name_prefix="jamf") as pool:
            window = {}
            next_page = 1
            try:
                for wanted in range(1, pages):
                    while next_page < pages and len(window) < self.max_connections:
                        window[next_page] = pool.submit(self.computers_page, next_page, page_size, sections, rsql,
                                                        sort)
                        next_page += 1
                    yield window.pop(wanted).result()
            finally:
                for future in window.values():
                    future.cancel()

    def iter_computers(self, sections=SECTIONS, rsql=None, page_size=None):
        """Yield every computers-inventory record (optionally filtered with RSQL)."""
        for page in self.iter_pages(sections, rsql, page_size):
            yield from page["results"]

    def get_computer(self, jamf_id, sections=SECTIONS):
        """One computer's full record, or None when Jamf Pro has no computer with that ID."""
        path = "/api/%s/computers-inventory/%s" % (self.inventory_version(), urllib.parse.quote(str(jamf_id), safe=""))
        response = self._send("GET", path, params=[("section", s) for s in sections])
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise JamfAuthError("Jamf Pro refused GET %s (HTTP %d)." % (path, response.status_code),
                                response.status_code)
        if response.status_code != 200:
            raise JamfError("Jamf Pro answered %d to GET %s." % (response.status_code, path), response.status_code)
        try:
            record = response.json()
        except ValueError:
            raise JamfError("Jamf Pro answered GET %s with something that is not JSON." % path, 200) from None
        if not isinstance(record, dict):
            raise JamfError("Jamf Pro answered GET %s with no record." % path, 200)
        return record

    def test_connection(self):
        """(ok, message) for the admin's connection test."""
        try:
            version = self.inventory_version()
            body = self.computers_page(0, 1, sections=("GENERAL",))
        except JamfError as exc:
            return False, str(exc)
        return True, "Connected: computers-inventory %s answers, %d computers." % (version, body["totalCount"])
