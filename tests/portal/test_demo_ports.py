"""make demo's URLs follow its host and ports (issue 14, item 4)."""

import socket

import pytest
from django.core.management import CommandError

from portal.management.commands import rundemo
from portal.management.commands.demo_data import MSP_EMAIL, MSP_USER, connect_demo_jamf
from portal.settings import sso_providers
from tests.factories import TenantFactory, UserFactory
from tests.signin.sso import sign_in_with_microsoft


def test_the_base_url_follows_host_and_port(monkeypatch):
    monkeypatch.delenv("PORTAL_BASE_URL", raising=False)
    assert rundemo.portal_base_url("127.0.0.1", "8100") == "http://127.0.0.1:8100"
    assert rundemo.portal_base_url("0.0.0.0", "8100") == "http://127.0.0.1:8100"  # noqa: S104
    assert rundemo.portal_base_url("::1", "8100") == "http://[::1]:8100"
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.com/")
    assert rundemo.portal_base_url("127.0.0.1", "8100") == "https://portal.example.com"


def test_the_simulator_port_is_the_one_asked_for_or_a_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match="in use"):
            rundemo.choose_simulator_port(port)
        chosen = rundemo.choose_simulator_port()
        assert chosen != port and rundemo.port_is_free("127.0.0.1", chosen)
    env = rundemo.simulator_env(8450)
    assert "https://127.0.0.1:8450" in env["PORTAL_CLOUD_OVERRIDES"]


@pytest.mark.django_db
def test_the_demo_tenants_jamf_url_follows_the_simulator():
    tenant = TenantFactory(slug="contoso")
    connect_demo_jamf(tenant, "https://127.0.0.1:8450")
    assert tenant.jamf_url == "https://127.0.0.1:8450/jamf/contoso"
    secret = tenant.webhook_secret
    connect_demo_jamf(tenant, "https://127.0.0.1:9443")  # the next demo's simulator elsewhere
    tenant.refresh_from_db()
    assert tenant.jamf_url == "https://127.0.0.1:9443/jamf/contoso" and tenant.webhook_secret == secret
    tenant.jamf_url = "https://jamf.contoso.example"  # a real Jamf Pro is left alone
    tenant.save()
    connect_demo_jamf(tenant, "https://127.0.0.1:8450")
    tenant.refresh_from_db()
    assert tenant.jamf_url == "https://jamf.contoso.example"


def test_the_demo_sign_in_with_microsoft_follows_the_simulator_and_the_portal():
    env = rundemo.sso_env("https://127.0.0.1:8544", "demo-secret")
    assert env["PORTAL_SSO_AUTHORITY"] == "https://127.0.0.1:8544/oidc"
    assert env["PORTAL_SSO_TENANT_ID"] and env["PORTAL_SSO_CLIENT_ID"] and env["PORTAL_SSO_CLIENT_SECRET"]
    providers = sso_providers(env["PORTAL_SSO_TENANT_ID"], env["PORTAL_SSO_CLIENT_ID"],
                              env["PORTAL_SSO_CLIENT_SECRET"], env["PORTAL_SSO_AUTHORITY"])
    assert providers["entra"]["APPS"][0]["settings"]["server_url"] == (
        "https://127.0.0.1:8544/oidc/%s/v2.0" % rundemo.DEMO_SSO_TENANT_ID
    )
    assert rundemo.sso_redirect_uris("http://127.0.0.1:8211") == [
        "http://127.0.0.1:8211/accounts/entra/login/callback/", "http://localhost:8211/accounts/entra/login/callback/"
    ]
    assert rundemo.sso_redirect_uris("https://portal.example.com") == [
        "https://portal.example.com/accounts/entra/login/callback/"
    ]


@pytest.mark.django_db
def test_the_demo_staff_member_signs_in_with_microsoft(client, simulator, settings):
    """What `make demo` sets up (rundemo.register_demo_sign_in and sso_env) signs the demo's MSP staff member in
    with the simulated Microsoft work account: the demo loses Sign in with Microsoft only if this fails."""
    UserFactory(username=MSP_USER, email=MSP_EMAIL, is_superuser=True, is_staff=True)
    env = rundemo.sso_env(simulator.base_url, "demo-secret")
    rundemo.register_demo_sign_in(simulator.base_url, simulator.ca_path, "http://testserver", "demo-secret",
                                  rundemo.demo_staff_upn(), "Demo MSP staff")
    settings.PORTAL_SSO_TENANT_ID = env["PORTAL_SSO_TENANT_ID"]
    settings.SOCIALACCOUNT_PROVIDERS = sso_providers(env["PORTAL_SSO_TENANT_ID"], env["PORTAL_SSO_CLIENT_ID"],
                                                     env["PORTAL_SSO_CLIENT_SECRET"], env["PORTAL_SSO_AUTHORITY"])
    assert b"Sign in with Microsoft" in client.get("/accounts/login/").content
    answer = sign_in_with_microsoft(client, simulator, MSP_EMAIL, tenant=rundemo.DEMO_SSO_TENANT_ID)
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.session["_auth_user_id"] == str(UserFactory._meta.model.objects.get(username=MSP_USER).pk)
