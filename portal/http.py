"""What every outbound HTTP client of the portal shares (Microsoft, Jamf Pro).

- :class:`VerifyingSession` passes ``verify`` and a timeout on every request: requests lets
  ``REQUESTS_CA_BUNDLE`` from the environment override a Session's own ``verify``, so setting it on
  the session is not enough.
- :func:`ca_bundle`: the configured CA file (the simulator's in the demo and tests), else the
  system store.
- :func:`parse_retry_after`: a Retry-After header in delta-seconds or as an HTTP date.
"""

import datetime
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter


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


class VerifyingSession(requests.Session):
    """A keep-alive session that passes ``verify`` and a default timeout on every request.

    Retries are the caller's (they must honour Retry-After and know what is safe to repeat), so
    the adapter never retries on its own.
    """

    def __init__(self, verify, timeout, *, pool_connections=1, pool_maxsize=10, pool_block=False):
        super().__init__()
        self.portal_verify = verify
        self.portal_timeout = timeout
        adapter = HTTPAdapter(
            pool_connections=pool_connections, pool_maxsize=pool_maxsize, pool_block=pool_block, max_retries=0
        )
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, **kwargs):
        kwargs["verify"] = self.portal_verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.portal_timeout
        return super().request(method, url, **kwargs)
