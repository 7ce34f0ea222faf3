"""The "Sign in with Microsoft" provider: allauth's OpenID Connect provider for the MSP's own Entra tenant.

allauth's generic provider trusts an ID token received straight from the token endpoint without
checking its signature (OIDC Core allows it) and does not check ``nonce``. For MSP staff the portal
is stricter: the signature is always verified against the tenant's JWKS, and the views check
``nonce`` and the tenant ID (``tid``) before anyone is signed in (signin/adapters.py).
"""

import secrets

from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.urls import reverse
from django.utils.http import urlencode


class EntraOAuth2Adapter(OpenIDConnectOAuth2Adapter):
    def __init__(self, request):
        super().__init__(request, EntraProvider.id)

    def get_callback_url(self, request, app):
        return request.build_absolute_uri(reverse("entra_callback"))

    def complete_login(self, request, app, token, **kwargs):
        id_token = kwargs["response"].get("id_token")
        if not id_token:
            from allauth.socialaccount.providers.oauth2.client import OAuth2Error

            raise OAuth2Error("The token endpoint sent no ID token.")
        # The ID token alone: Graph's /me is not needed, and the token's claims are signed.
        data = {"id_token": self._decode_id_token(app, id_token)}
        return self.get_provider().sociallogin_from_response(request, data)

    def _decode_id_token(self, app, id_token):
        return jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            audience=app.client_id,
            lookup_kid=jwtkit.lookup_kid_jwk,
            verify_signature=True,
        )


class EntraProvider(OpenIDConnectProvider):
    id = "entra"
    name = "Microsoft"
    oauth2_adapter_class = EntraOAuth2Adapter
    pkce_enabled_default = True

    def get_login_url(self, request, **kwargs):
        url = reverse("entra_login")
        return "%s?%s" % (url, urlencode(kwargs)) if kwargs else url

    def get_callback_url(self):
        return reverse("entra_callback")

    def get_oauth2_adapter(self, request):
        return EntraOAuth2Adapter(request)

    def get_default_scope(self):
        return ["openid", "profile", "email"]

    def extract_uid(self, data):
        # oid: the user's ID in the tenant, the same in every application (sub is per application).
        return str(data["id_token"]["oid"])

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        # A fresh nonce per sign-in, kept in allauth's state for the callback to compare.
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()
        auth_params["nonce"] = nonce
        return super().redirect(request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs)


provider_classes = [EntraProvider]
