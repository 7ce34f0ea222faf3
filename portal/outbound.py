"""Which addresses the portal may connect to for a URL a tenant admin set (issue 12, item 4; design section 8).

A tenant admin sets the Jamf Pro URL (fetched by the pull and the webhooks' record fetch) and the logo URL
(shown on landing pages). Such a URL must resolve to public addresses, unless the operator allow-lists the
host in ``PORTAL_OUTBOUND_ALLOWED_HOSTS`` (an on-premises Jamf Pro on a private network is real).
Link-local and cloud metadata addresses are never allowed, allow-list or not.

Checked twice: when the URL is saved (:func:`validate_outbound_url`, a model field validator) and on
every connection the portal opens to it (``portal.http.VerifyingSession(guard_outbound=True)``): the
name is resolved and checked before connecting, and the address the socket actually connected to is
checked again before a byte is sent, so a DNS answer that changes after the save (or between the two
look-ups) cannot lead inside the network.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

#: Never reachable, whatever the allow-list says: link-local (169.254.169.254 is the metadata service of AWS,
#: Azure, Google Cloud, OpenStack, ...), the other clouds' metadata addresses, "this network", multicast,
#: broadcast.
NEVER = [
    ipaddress.ip_network(network) for network in (
        "169.254.0.0/16", "fe80::/10",  # link-local
        "168.63.129.16/32",  # Azure WireServer
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "0.0.0.0/8", "::/128",  # unspecified / "this network"
        "224.0.0.0/4", "ff00::/8", "255.255.255.255/32",  # multicast, broadcast
    )
]


class OutboundRefused(Exception):
    """A connection to a tenant-set URL would reach an address the portal must not reach."""

    def __init__(self, host, reason):
        super().__init__("%s: %s" % (host, reason))
        self.host = host
        self.reason = reason


def _normalized(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def _allow_list():
    """(host names, host suffixes, networks) from ``PORTAL_OUTBOUND_ALLOWED_HOSTS``."""
    names, suffixes, networks = set(), [], []
    for entry in getattr(settings, "PORTAL_OUTBOUND_ALLOWED_HOSTS", ()):
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if entry.startswith("*."):
            suffixes.append(entry[1:])
        else:
            names.add(entry)
    return names, suffixes, networks


def host_is_allow_listed(host):
    names, suffixes, _networks = _allow_list()
    host = (host or "").lower().rstrip(".").strip("[]")
    return host in names or any(host.endswith(suffix) for suffix in suffixes)


def refusal(host, address):
    """Why ``host`` may not be reached at ``address`` (a str), or None when it may."""
    try:
        ip = _normalized(address)
    except ValueError:
        return "not an IP address"
    if any(ip in network for network in NEVER):
        return "a link-local or cloud metadata address, which is never allowed"
    if ip.is_global:
        return None
    _names, _suffixes, networks = _allow_list()
    if host_is_allow_listed(host) or any(ip in network for network in networks):
        return None
    return "an address that is not public (an operator can allow the host with PORTAL_OUTBOUND_ALLOWED_HOSTS)"


def resolve(host, port):
    """The addresses ``host`` resolves to (IP literals as themselves); raises socket.gaierror."""
    host = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_host(host, port):
    """Raise :class:`OutboundRefused` unless every address ``host`` resolves to may be reached.

    A name that does not resolve raises ``socket.gaierror`` (the caller decides what that means).
    """
    for address in resolve(host, port):
        reason = refusal(host, address)
        if reason:
            raise OutboundRefused(host, reason)


def validate_outbound_url(value):
    """Model validator: the URL's host resolves to addresses the portal may reach (see the module docstring).

    A name that does not resolve now is accepted (its Jamf Pro may not be reachable from here yet); the
    check on every connection still applies.
    """
    if not value:
        return
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # the URL validator names the problem
    if not host:
        return
    try:
        check_host(host, port)
    except OutboundRefused as exc:
        raise ValidationError(
            _("%(host)s resolves to %(reason)s."), code="outbound_refused", params={"host": host, "reason": exc.reason}
        ) from None
    except (OSError, UnicodeError):
        return
