"""The Jamf Pro webhook receiver: ``POST /hooks/jamf/<tenant-slug>/``.

The hot path (every Mac checks in every 15 minutes): authenticate, read at most 1 MB, parse,
store the InventoryEvent and ask for a drain of the tenant's pending events (one queued drain task per
tenant at a time, coordinated in the database: ``portal.lanes``) in one transaction, answer 202. The work
(``devices.tasks.drain_events``) happens in a django-q2 worker, a batch of events at a time.

Authentication is per tenant, with the tenant's webhook secret in Jamf Pro's header
authentication (``X-Webhook-Secret: <secret>`` or ``Authorization: Bearer <secret>``) or in HTTP
Basic (``webhook_username`` and the secret). Secrets are compared in constant time, and an unknown
tenant, an inactive tenant, a tenant without a secret and a wrong secret all get the same 401, with
nothing stored (design section 8).
"""

import base64
import binascii
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from devices.jamf.webhook import WebhookError, parse_webhook
from devices.models import InventoryEvent
from devices.tasks import queue_drain
from portal.models import Tenant

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
CACHE_SECONDS = 10
SECRET_HEADER = "X-Webhook-Secret"
JSON_TYPES = ("application/json", "text/json")
# Compared against when the tenant is unknown, so an unknown slug costs the same as a wrong secret.
_DUMMY_SECRET = secrets.token_urlsafe(32)


def generate_webhook_secret():
    """A new webhook secret (the admin shows it once)."""
    return secrets.token_urlsafe(32)


def _credentials(request):
    """(username or None, secret) from the request's headers; secret is "" when none was sent."""
    header = request.headers.get(SECRET_HEADER)
    if header:
        return None, header.strip()
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return None, value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None, ""
        username, sep, password = decoded.partition(":")
        return (username, password) if sep else (None, "")
    return None, ""


def _same(given, expected):
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class HookTenant:
    """What the receiver needs of a tenant, cached briefly per process (see _lookup)."""

    id: int
    slug: str
    username: str
    secret: str


_cache = {}  # slug -> (expires, HookTenant)
_cache_lock = threading.Lock()


def _lookup(slug):
    """The active tenant's webhook credentials, from a per-process cache of CACHE_SECONDS.

    The cache saves a query and a decryption on the hot path. A save in this process clears it; in
    other processes a rotated secret takes effect within CACHE_SECONDS. Unknown slugs are not cached.
    """
    now = time.monotonic()
    hit = _cache.get(slug)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (
        Tenant.objects.filter(slug=slug, is_active=True)
        .values_list("id", "slug", "webhook_username", "webhook_secret")
        .first()
    )
    if row is None:
        return None
    tenant = HookTenant(row[0], row[1], row[2] or "jamf", row[3] or "")  # "jamf": the admin's default
    with _cache_lock:
        if len(_cache) > 10000:
            _cache.clear()
        _cache[slug] = (now + CACHE_SECONDS, tenant)
    return tenant


@receiver(post_save, sender=Tenant)
@receiver(post_delete, sender=Tenant)
def _forget_tenants(**kwargs):
    with _cache_lock:
        _cache.clear()


def authenticate(request, slug):
    """The tenant whose webhook secret the request carries, else None (for every kind of failure)."""
    username, secret = _credentials(request)
    tenant = _lookup(slug)
    expected = tenant.secret if tenant else ""
    ok = _same(secret, expected or _DUMMY_SECRET)
    if username is not None:
        ok = _same(username, tenant.username if tenant else _DUMMY_SECRET) and ok
    return tenant if (tenant is not None and expected and secret and ok) else None


def _error(status, message, **extra):
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="jamf-webhooks", charset="UTF-8"'
    return response


def _read_body(request):
    """The body, or None when it is over MAX_BODY (whatever Content-Length says)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        return None
    body = request.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _storable(body):
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def store_event(tenant, body, parsed=None, error=""):
    """Store the event and, when there is work to do, queue its processing, in one transaction."""
    if parsed is None:
        status, event_type, timestamp = InventoryEvent.Status.REJECTED, "", None
    else:
        event_type, timestamp = parsed.event_type, parsed.timestamp
        status = InventoryEvent.Status.IGNORED if parsed.action == "ignored" else InventoryEvent.Status.PENDING
        if status == InventoryEvent.Status.IGNORED:
            error = "Not an event the portal acts on."
    with transaction.atomic():
        event = InventoryEvent.objects.create(
            tenant_id=tenant.id, source=InventoryEvent.Source.WEBHOOK, event_type=event_type,
            event_timestamp=timestamp, raw_body=_storable(body), status=status, error=error,
        )
        if status == InventoryEvent.Status.PENDING:
            queue_drain(tenant.id)
    return event


@csrf_exempt  # authenticated by the per-tenant secret, not a session
def jamf_webhook(request, slug):
    if request.method != "POST":
        response = _error(405, "Send webhooks with POST.")
        response["Allow"] = "POST"
        return response
    try:
        tenant = authenticate(request, slug)
        if tenant is None:
            return _error(401, "Authentication required: the tenant's webhook secret (header or HTTP Basic).")
        body = _read_body(request)
        if body is None:
            logger.info("webhook for %s refused: body over %d bytes", tenant.slug, MAX_BODY)
            return _error(413, "The body is over 1 MB.")
        content_type = request.content_type or ""
        if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
            reason = "Content-Type %s: set the webhook's content type to JSON in Jamf Pro." % content_type[:100]
            event = store_event(tenant, body, error=reason)
            return _error(415, reason, id=event.pk)
        try:
            parsed = parse_webhook(body)
        except WebhookError as exc:
            event = store_event(tenant, body, error=str(exc))
            return _error(400, str(exc), id=event.pk)
        event = store_event(tenant, body, parsed)
    except DatabaseError:
        logger.exception("webhook for %s could not be stored", slug)
        response = _error(503, "The portal cannot store events right now; send it again.")
        response["Retry-After"] = "30"
        return response
    return JsonResponse({"id": event.pk, "status": event.status}, status=202)
