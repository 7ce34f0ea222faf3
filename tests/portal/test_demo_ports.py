"""make demo's URLs follow its host and ports (issue 14, item 4)."""

import socket

import pytest
from django.core.management import CommandError

from portal.management.commands import rundemo
from portal.management.commands.demo_data import connect_demo_jamf
from tests.factories import TenantFactory


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
