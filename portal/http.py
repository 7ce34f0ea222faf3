"""What every outbound HTTP client of the portal shares (Microsoft, Jamf Pro).

- :class:`VerifyingSession` passes ``verify`` and a timeout on every request: requests lets
  ``REQUESTS_CA_BUNDLE`` from the environment override a Session's own ``verify``, so setting it on
  the session is not enough.
- :func:`ca_bundle`: the configured CA file (the simulator's in the demo and tests), else the
  system store.
- :func:`parse_retry_after`: a Retry-After header in delta-seconds or as an HTTP date.
"""

import datetime
import os
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from portal import outbound


def ca_bundle():
    """What requests and msal verify against: ``PORTAL_CA_BUNDLE`` when set, else the system store."""
    return getattr(settings, "PORTAL_CA_BUNDLE", "") or True


def parse_retry_after(value):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class OutboundRefusedError(NewConnectionError):
    """urllib3's face of :class:`portal.outbound.OutboundRefused` (requests raises it as a ConnectionError)."""

    def __init__(self, conn, refused):
        super().__init__(conn, str(refused))
        self.refused = refused


def outbound_refusal(exc):
    """The :class:`portal.outbound.OutboundRefused` behind a requests exception, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OutboundRefusedError):
            return exc.refused
        reason = getattr(exc, "reason", None)
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = reason if isinstance(reason, BaseException) else inner or exc.__cause__ or exc.__context__
    return None


class _GuardedConnectionMixin:
    """Connect only to addresses ``portal.outbound`` allows for the URL's host.

    The name is resolved and checked before connecting (so nothing is sent to a refused address), then
    the address the socket is actually connected to is checked again (the name may resolve differently
    the second time), before TLS or any request byte.
    """

    def _new_conn(self):
        host = self._dns_host
        try:
            outbound.check_host(host, self.port)
        except outbound.OutboundRefused as refused:
            raise OutboundRefusedError(self, refused) from None
        except OSError:
            pass  # an unresolvable name fails in the connect below, as usual
        sock = super()._new_conn()
        try:
            address = sock.getpeername()[0]
        except OSError as exc:
            sock.close()
            raise NewConnectionError(self, "Failed to establish a new connection: %s" % exc) from exc
        reason = outbound.refusal(host, address)
        if reason:
            sock.close()
            raise OutboundRefusedError(self, outbound.OutboundRefused(host, reason))
        return sock


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connections are checked by ``portal.outbound`` (for URLs tenant admins set)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy, the proxy would resolve and reach the tenant's host, out of the guard's sight.
        raise requests.exceptions.InvalidProxyURL(
            "Tenant-set URLs are not fetched through a proxy: the outbound address check needs the direct "
            "connection."
        )


# What requests' proxy lookup for an http(s) URL reads from the environment (urllib.request.getproxies_environment).
PROXY_VARIABLES = tuple(
    case(name) for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for case in (str.lower, str.upper)
) + ("REQUEST_METHOD",)


class VerifyingSession(requests.Session):
    """A keep-alive session that passes ``verify`` and a default timeout on every request.

    Retries are the caller's (they must honour Retry-After and know what is safe to repeat), so
    the adapter never retries on its own. ``guard_outbound`` (for URLs a tenant admin sets, such as
    the Jamf Pro URL) connects only to addresses ``portal.outbound`` allows.
    """

    def __init__(self, verify, timeout, *, pool_connections=1, pool_maxsize=10, pool_block=False,
                 guard_outbound=False):
        super().__init__()
        self.portal_verify = verify
        self.portal_timeout = timeout
        self._environ_proxies = {}
        if guard_outbound:
            self.trust_env = False  # no proxy from the environment: the guard needs the direct connection
        adapter = (GuardedAdapter if guard_outbound else HTTPAdapter)(
            pool_connections=pool_connections, pool_maxsize=pool_maxsize, pool_block=pool_block, max_retries=0
        )
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, **kwargs):
        kwargs["verify"] = self.portal_verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.portal_timeout
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests' own, with the environment's proxies for a URL looked up once per host and proxy settings.

        requests reads them for every request by decoding the whole environment twice, which cost more client time
        than anything else in one of Intune's DataUploadMessages PUTs. The cache key holds every variable that can
        change the answer for an http(s) URL, so a changed proxy setting is still seen.
        """
        if not self.trust_env or proxies is None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy")
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy, *(os.environ.get(name) for name in PROXY_VARIABLES))
        env_proxies = self._environ_proxies.get(key)
        if env_proxies is None:
            env_proxies = self._environ_proxies[key] = requests.utils.get_environ_proxies(url, no_proxy=no_proxy)
        for name, value in env_proxies.items():
            proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        merge = requests.sessions.merge_setting
        return {"proxies": merge(proxies, self.proxies), "stream": merge(stream, self.stream),
                "verify": merge(verify, self.verify), "cert": merge(cert, self.cert)}
