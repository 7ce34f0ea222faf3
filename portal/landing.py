"""The end users' landing pages at ``/r/<tenant-slug>/``: where Entra sends a Mac it does not recognise.

These URLs are what the portal registers with Intune as the tenant's enrollment and remediation
URLs, so they stay stable. ``/r/<slug>/`` serves the tenant's choice (design §4, seed step 1): the
device-registration page (default), an access-denied page (403), or a 302 to the tenant's own
https URL; ``/r/<slug>/remediation/`` tells the user how to become compliant with the tenant's
enabled policy rules. Unknown and inactive tenants get the same plain 404.

A rollout sends a whole company here the same morning, so a request costs no query beyond the
tenant lookup (cached briefly per slug) and, only when the query string carries a device hint,
one indexed lookup of that hint within the tenant. Nothing from the request is ever echoed into
a redirect, and no page shows a computer's data (design §8).
"""

import dataclasses
import functools
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from portal import tenancy
from portal.landing_remediation import remediation_items
from portal.models import LandingPage, Tenant, validate_https_url, validate_self_service_url

logger = logging.getLogger(__name__)

# settings.LANDING_MAX_AGE: how long browsers and shared caches may keep a page.
# settings.LANDING_TENANT_CACHE_SECONDS: how long a worker keeps a tenant's landing settings (a save
# in the same process, or anywhere with a shared cache such as Redis, clears them at once).
_CACHE_PREFIX = "landing:tenant:v1:"
_MISS = object()

# Query-string names that may carry a device hint: an Entra device ID, a serial number or a UDID.
HINT_PARAMS = ("device", "deviceId", "device_id", "serial", "serialNumber", "udid")
_HINT_RE = re.compile(r"^[A-Za-z0-9-]{6,64}$")

# Registration page variants. The page never says what it knows about a Mac: a hint only reorders
# the two fixed paths, so every possible response is one of these, identical for every user.
VARIANT_DEFAULT = "default"  # not enrolled first, then enrolled (the order a new Mac goes through)
VARIANT_ENROLLED = "enrolled"  # the hint is a Mac this tenant's Jamf Pro manages: Self Service first

CSP_BASE = (
    "default-src 'none'; style-src 'self'; img-src 'self'{logo}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@dataclasses.dataclass(frozen=True)
class LandingTenant:
    """The few Tenant fields a landing page needs: small, picklable and hashable for the cache."""

    id: int
    slug: str
    name: str
    landing_page: str
    custom_url: str
    enrollment_url: str
    self_service_url: str
    support_contact: str
    logo_url: str

    @property
    def logo_origin(self):
        if not self.logo_url:
            return ""
        # Host and port only: user info in the URL must never reach the CSP header.
        parts = urlsplit(self.logo_url)
        host = "[%s]" % parts.hostname if ":" in parts.hostname else parts.hostname
        return "%s://%s%s" % (parts.scheme, host, ":%d" % parts.port if parts.port else "")


def _safe_https(value, field, slug):
    """The value when it is a valid https URL, else ''. Forms validate on save; this also covers
    rows written without ``full_clean`` so a bad value can never become a redirect or a link."""
    if not value:
        return ""
    try:
        validate_https_url(value)
    except ValidationError:
        logger.warning("Tenant %s: ignoring %s, not an https URL", slug, field)
        return ""
    return value


def _safe_self_service(value, slug):
    if not value:
        return ""
    try:
        validate_self_service_url(value)
    except ValidationError:
        logger.warning("Tenant %s: ignoring the Self Service link, not a jamfselfservice:// or https:// link", slug)
        return ""
    return value


def load_landing_tenant(slug):
    """Read an active tenant's landing settings from the database, or None (unknown or inactive)."""
    row = (
        Tenant.objects.filter(slug=slug, is_active=True)
        .values(
            "id",
            "slug",
            "name",
            "landing_page",
            "landing_custom_url",
            "jamf_enrollment_url",
            "self_service_registration_url",
            "support_contact",
            "logo_url",
        )
        .first()
    )
    if row is None:
        return None
    return LandingTenant(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        landing_page=row["landing_page"],
        custom_url=_safe_https(row["landing_custom_url"], "the custom landing URL", slug),
        enrollment_url=_safe_https(row["jamf_enrollment_url"], "the enrollment URL", slug),
        self_service_url=_safe_self_service(row["self_service_registration_url"], slug),
        support_contact=row["support_contact"],
        logo_url=_safe_https(row["logo_url"], "the logo URL", slug),
    )


def get_landing_tenant(slug):
    """The tenant's landing settings through the cache (None is cached too: unknown slugs cost nothing)."""
    key = _CACHE_PREFIX + slug
    value = cache.get(key, _MISS)
    if value is _MISS:
        value = load_landing_tenant(slug)
        cache.set(key, value, settings.LANDING_TENANT_CACHE_SECONDS)
    return value


def forget_landing_tenant(slug):
    cache.delete(_CACHE_PREFIX + slug)


def _tenant_changed(sender, instance, **kwargs):
    forget_landing_tenant(instance.slug)


post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="landing_tenant_saved")
post_delete.connect(_tenant_changed, sender=Tenant, dispatch_uid="landing_tenant_deleted")


def read_hint(query):
    """The device hint from a query string (a QueryDict), or None when absent or malformed."""
    for name in HINT_PARAMS:
        value = query.get(name, "").strip()
        if value:
            return value if _HINT_RE.match(value) else None
    return None


def registration_variant(tenant_id, hint):
    """Which registration path to show first for ``hint``, looked up only among this tenant's Macs.

    A managed, unretired Mac of this tenant is enrolled, so its user needs Self Service; anything
    else (unknown, retired, another tenant's Mac) gets the default page, so the answer tells no more
    than "this tenant manages that Mac".
    """
    if not hint:
        return VARIANT_DEFAULT
    from devices.models import Computer

    forms = list({hint, hint.upper(), hint.lower()})
    enrolled = (
        Computer.objects.filter(tenant_id=tenant_id, managed=True, retired_at__isnull=True)
        .filter(Q(entra_device_id__in=forms) | Q(serial_number__in=forms) | Q(udid__in=forms))
        .exists()
    )
    return VARIANT_ENROLLED if enrolled else VARIANT_DEFAULT


# -- Responses -------------------------------------------------------------------------------------


def _finish(response, tenant=None, private=False):
    """Security and caching headers shared by every landing response."""
    logo = " " + tenant.logo_origin if tenant is not None and tenant.logo_origin else ""
    response["Content-Security-Policy"] = CSP_BASE.format(logo=logo)
    # The hint may sit in the query string: never hand it to the next site in a Referer.
    response["Referrer-Policy"] = "no-referrer"
    response["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if private:
        # A page chosen by a device hint stays in that user's browser only: a shared cache would
        # keep one device's identifier and answer in its store.
        patch_cache_control(response, private=True, max_age=settings.LANDING_MAX_AGE)
    else:
        patch_cache_control(response, public=True, max_age=settings.LANDING_MAX_AGE)
    return response


@functools.lru_cache(maxsize=512)
def render_page(template, tenant, language, **extra):
    """A page's HTML, rendered once per worker for each distinct input.

    Every input is in the key: the template, the frozen tenant snapshot (a change to the tenant
    is a new key), the active language and the hashable extras. No page depends on the request
    otherwise, so a crowd costs one render per worker, not one per request.
    """
    context = dict(extra, tenant=tenant)
    if tenant is not None:
        context["remediation_url"] = reverse("landing-remediation", args=[tenant.slug])
    return render_to_string(template, context).encode()


def _page(template, tenant=None, status=200, private=False, **extra):
    body = render_page(template, tenant, translation.get_language(), **extra)
    return _finish(HttpResponse(body, status=status), tenant, private)


def not_found():
    return _page("landing/404.html", status=404)


def registration_response(tenant, variant=VARIANT_DEFAULT, private=False):
    return _page("landing/registration.html", tenant, private=private, enrolled_first=variant == VARIANT_ENROLLED)


def access_denied_response(tenant):
    return _page("landing/access_denied.html", tenant, status=403)


def remediation_response(tenant):
    return _page("landing/remediation.html", tenant, items=remediation_items(tenant.id))


@require_safe
def landing(request, slug):
    """``/r/<slug>/``: the tenant's chosen landing page."""
    tenant = get_landing_tenant(slug)
    if tenant is None:
        return not_found()
    if tenant.landing_page == LandingPage.CUSTOM and tenant.custom_url:
        # Only the tenant's own, validated URL: nothing from the request is added to it.
        return _finish(HttpResponseRedirect(tenant.custom_url), tenant)
    if tenant.landing_page == LandingPage.ACCESS_DENIED:
        return access_denied_response(tenant)
    hinted = any(name in request.GET for name in HINT_PARAMS)
    variant = registration_variant(tenant.id, read_hint(request.GET)) if hinted else VARIANT_DEFAULT
    return registration_response(tenant, variant, private=hinted)


@require_safe
def remediation(request, slug):
    """``/r/<slug>/remediation/``: how to make this Mac compliant with the tenant's rules."""
    tenant = get_landing_tenant(slug)
    if tenant is None:
        return not_found()
    return remediation_response(tenant)


PREVIEWS = {
    "registration": lambda tenant: registration_response(tenant),
    "registration-enrolled": lambda tenant: registration_response(tenant, VARIANT_ENROLLED),
    "access-denied": access_denied_response,
    "remediation": remediation_response,
}


@require_safe
def preview(request, slug, kind):
    """``/r/<slug>/preview/<kind>/``: any page kind for the tenant's own staff, whatever its choice.

    For the tenant page's preview links. Anyone without a role in the tenant gets the plain 404,
    so the URL reveals nothing; responses are never stored by a cache.
    """
    tenant = load_landing_tenant(slug)
    render = PREVIEWS.get(kind)
    if tenant is None or render is None or not tenancy.has_role(request.user, tenant.id, tenancy.VIEWER):
        response = not_found()
    else:
        response = render(tenant)
    response["Cache-Control"] = "private, no-store"
    return response


def landing_urls(tenant):
    """The absolute enrollment and remediation URLs to register with Intune for ``tenant``."""
    base = settings.PORTAL_BASE_URL
    return {
        "enrollment": base + reverse("landing", args=[tenant.slug]),
        "remediation": base + reverse("landing-remediation", args=[tenant.slug]),
    }
