"""allauth adapters: no self-registration; Microsoft sign-in only into an existing account of the MSP's tenant.

A person signs in with Microsoft only when the ID token (signature, issuer, audience and expiry
checked by signin/provider.py) also carries the ``nonce`` this browser was sent with and the MSP's
Entra tenant ID (``PORTAL_SSO_TENANT_ID``), and names an account that exists: one already linked to
that Entra user (``oid``), or an active user whose e-mail address equals the token's UPN
(``preferred_username``) or ``email``. Within the MSP's own tenant those are set by its admins, so
they are verified; an account from any other tenant is refused before that. Nobody is created.
"""

import logging
import secrets

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.shortcuts import render
from django.utils.translation import gettext as _

from portal.http import VerifyingSession, ca_bundle

logger = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False  # accounts are created by MSP staff in the admin, never by the person signing in

    def pre_authenticate(self, request, **credentials):
        # Wrong passwords are counted by axes, in the database (signin/lockout.py); allauth's count would live in
        # each process's cache and answer with a different page. Its limit on MFA codes stays.
        self._login_failed_rl_usage = None


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        return False

    def get_requests_session(self):
        # The portal's verifying session: PORTAL_CA_BUNDLE (the simulator's in tests and the demo) and a timeout.
        return VerifyingSession(ca_bundle(), settings.SOCIALACCOUNT_REQUESTS_TIMEOUT)

    def pre_social_login(self, request, sociallogin):
        if sociallogin.account.provider != "entra":
            self._refuse(request, _("This sign-in method is not offered."), "unknown provider")
        if (sociallogin.state or {}).get("process", "login") != "login":
            self._refuse(request, _("Microsoft accounts are linked by signing in."), "process %r" % sociallogin.state)
        claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
        expected_nonce = (sociallogin.state or {}).get("nonce") or ""
        if not expected_nonce or not secrets.compare_digest(str(claims.get("nonce") or ""), expected_nonce):
            self._refuse(request, _("The sign-in answer did not belong to this sign-in. Try again."), "nonce mismatch")
        tenant = (settings.PORTAL_SSO_TENANT_ID or "").lower()
        if not tenant or str(claims.get("tid") or "").lower() != tenant:
            self._refuse(
                request,
                _("Only accounts of the MSP's own Microsoft Entra tenant can sign in here."),
                "token of tenant %r, expected %r" % (claims.get("tid"), tenant),
            )
        if sociallogin.is_existing:
            if not sociallogin.user.is_active:
                self._refuse(request, _("This portal account is disabled."), "inactive user")
            return
        user = self._matching_user(claims)
        if user is None:
            self._refuse(
                request,
                _(
                    "There is no portal account for %(name)s. Ask an MSP administrator to create one with "
                    "this e-mail address."
                )
                % {"name": claims.get("preferred_username") or claims.get("email") or "this Microsoft account"},
                "no account matches",
            )
        sociallogin.connect(request, user)

    @staticmethod
    def _matching_user(claims):
        names = {str(claims[key]).strip().lower() for key in ("preferred_username", "upn", "email") if claims.get(key)}
        names = {name for name in names if "@" in name}
        if not names:
            return None
        match = Q()
        for name in names:
            match |= Q(email__iexact=name)
        users = list(get_user_model().objects.filter(match, is_active=True)[:2])
        return users[0] if len(users) == 1 else None  # two accounts with one address: refuse rather than guess

    @staticmethod
    def _refuse(request, message, reason):
        logger.warning("Sign in with Microsoft refused: %s", reason)
        raise ImmediateHttpResponse(render(request, "signin/refused.html", {"message": message}, status=403))
