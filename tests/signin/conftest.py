import pytest

from portal.settings import sso_providers
from simulator.oidc import OidcService
from tests.signin.sso import CLIENT_ID, CLIENT_SECRET, TENANT


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    """Dozens of password checks per test: a cheap hasher keeps them quick (never in production)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def entra(simulator, settings):
    """The simulator's Entra sign-in with the portal's app registered, and the portal pointed at it."""
    service = simulator.service(OidcService)
    service.register_client(TENANT, CLIENT_ID, CLIENT_SECRET)
    settings.PORTAL_SSO_TENANT_ID = TENANT
    settings.SOCIALACCOUNT_PROVIDERS = sso_providers(TENANT, CLIENT_ID, CLIENT_SECRET, simulator.base_url + "/oidc")
    return service
