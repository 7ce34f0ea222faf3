"""Walk MSP staff through setting up MFA before they can do anything else (``PORTAL_REQUIRE_MFA``)."""

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from portal.tenancy import is_msp_staff

# What a person without MFA may still open: setting it up, signing out, static files (and the favicon).
ALLOWED_PREFIXES = (
    "/accounts/2fa/",
    "/accounts/logout/",
    "/accounts/reauthenticate/",
    "/static/",
    "/healthz",
    "/favicon.ico",
)
# Fetch Metadata (Sec-Fetch-Dest) of a page the person opens, as opposed to what a page loads.
PAGE_DESTINATIONS = ("document", "iframe", "frame")


def signed_in_with_microsoft(request):
    """True when this session's sign-in was Sign in with Microsoft (Entra enforces MFA there)."""
    records = get_authentication_records(request, getattr(request, "user", None))
    return any(record.get("method") == "socialaccount" for record in records)


def is_page_request(request):
    """True for a page the person opens; False for what a page loads (an image, the favicon, a script, a fetch).

    Only a page is sent to the set-up page: allauth makes a new TOTP secret each time that page is opened, so a
    favicon request redirected there would replace the secret the person is scanning. Browsers say which it is
    in ``Sec-Fetch-Dest``; a client that does not (an old browser, a script) is treated as opening a page.
    """
    destination = request.headers.get("Sec-Fetch-Dest")
    return not destination or destination in PAGE_DESTINATIONS


def needs_mfa_setup(request):
    user = getattr(request, "user", None)
    return bool(
        settings.PORTAL_REQUIRE_MFA
        and is_msp_staff(user)
        and not signed_in_with_microsoft(request)
        and not is_mfa_enabled(user, [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])
    )


class RequireMFAMiddleware:
    """A password-signed-in MSP staff member without TOTP or a security key is sent to set one up.

    Requests with an API token are untouched: knox authenticates inside DRF, after this middleware,
    so ``request.user`` is anonymous here for them. A session without sign-in records (an old one)
    counts as a password sign-in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(ALLOWED_PREFIXES) and needs_mfa_setup(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": _("Set up multi-factor authentication at /accounts/2fa/ before using the API.")},
                    status=403,
                )
            if not is_page_request(request):
                return HttpResponseForbidden(_("Set up multi-factor authentication first."), content_type="text/plain")
            messages.info(request, _("MSP staff need multi-factor authentication. Set up an authenticator app now."))
            return redirect("%s?%s" % (reverse("mfa_activate_totp"), urlencode({"next": request.get_full_path()})))
        return self.get_response(request)
