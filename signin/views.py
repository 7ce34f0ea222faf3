"""Views of the sign-in flow that are the portal's own; the rest is allauth's."""

from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from signin.provider import EntraOAuth2Adapter

# allauth pages that are not offered (see not_offered).
NOT_OFFERED = ("email/", "3rdparty/", "3rdparty/signup/", "social/connections/", "social/signup/")

oauth2_login = OAuth2LoginView.adapter_view(EntraOAuth2Adapter)
oauth2_callback = OAuth2CallbackView.adapter_view(EntraOAuth2Adapter)


def admin_login(request, extra_context=None):
    """The admin's login goes through the one sign-in flow (lockouts, Microsoft, MFA): no way around MFA."""
    next_url = request.GET.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("admin:index")
    return redirect("%s?%s" % (reverse("account_login"), urlencode({"next": next_url})))


def not_offered(request, *args, **kwargs):
    """allauth pages the portal does not offer: people do not change their own e-mail addresses (Sign in
    with Microsoft matches by them) or link other accounts; MSP staff do that in the admin."""
    raise Http404("Not offered here.")
