"""The client's address, taken correctly behind the reverse proxies the operator declared.

``PORTAL_TRUSTED_PROXIES`` (environment, default 0) is the number of reverse proxies in front of the
portal that each append the address they received from to ``X-Forwarded-For``. With 0 the address is
``REMOTE_ADDR`` and the header is ignored, because any client can send it. With N, the address is the
N-th entry from the right of the header: the one the outermost trusted proxy wrote; entries further
left were written by the client and are never used. These are the semantics of Django REST
framework's ``NUM_PROXIES``, which settings.py sets from the same value, so throttles, the audit trail
and the sign-in lockouts all see one address.
"""

import ipaddress

from django.conf import settings


def _valid(address):
    """The address without a port or brackets, or None when it is not an IP address."""
    address = (address or "").strip()
    if address.startswith("["):  # [2001:db8::1]:443
        address = address[1:].split("]", 1)[0]
    elif address.count(":") == 1:  # 192.0.2.1:443
        address = address.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def client_ip(request):
    """The address of the client that sent ``request`` (a string), or None when it cannot be told."""
    remote = _valid(request.META.get("REMOTE_ADDR"))
    proxies = getattr(settings, "PORTAL_TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    entries = [entry.strip() for entry in forwarded.split(",")]
    return _valid(entries[-min(proxies, len(entries))]) or remote
