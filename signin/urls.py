"""allauth includes this module for the Microsoft provider: /accounts/entra/login/ and its callback."""

from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from signin.provider import EntraProvider

urlpatterns = default_urlpatterns(EntraProvider)
