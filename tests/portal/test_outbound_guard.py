"""URLs tenant admins set reach only public addresses unless the operator allow-lists the host; link-local and
metadata addresses never; checked at save and on every connection; errors show no connection detail (issue 12,
item 4)."""

import socket
import threading

import pytest
from django.core.exceptions import ValidationError

from devices.jamf.client import JamfClient, JamfError
from portal.models import Tenant
from portal.outbound import refusal, validate_outbound_url
from tests.api.conftest import token_client
from tests.devices.jamf_helpers import connect

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.1.1", "fe80::1", "168.63.129.16", "100.100.100.200",
                                     "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0"])
def test_link_local_and_metadata_addresses_are_never_allowed(settings, address):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = [address, "0.0.0.0/0", "::/0", "metadata.internal"]
    assert refusal("metadata.internal", address)


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.9", "192.168.1.1", "127.0.0.1", "::1", "100.64.0.1",
                                     "fc00::5", "::ffff:10.0.0.1"])
def test_private_addresses_need_the_allow_list(settings, address):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    assert refusal("jamf.corp.example", address)
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = ["jamf.corp.example"]
    assert refusal("jamf.corp.example", address) is None
    assert refusal("other.corp.example", address)
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = ["*.corp.example"]
    assert refusal("jamf.corp.example", address) is None
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.1", "::1",
                                              "100.64.0.0/10", "fc00::/7"]
    assert refusal("anything.example", address) is None


def test_public_addresses_are_allowed(settings):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    assert refusal("jamf.example", "93.184.216.34") is None
    assert refusal("jamf.example", "2606:2800:220:1:248:1893:25c8:1946") is None


@pytest.mark.parametrize("field,url", [
    ("jamf_url", "https://169.254.169.254/"),
    ("jamf_url", "https://10.0.0.5:8443/"),
    ("jamf_url", "https://127.0.0.1/"),
    ("jamf_url", "https://localhost/"),
    ("jamf_url", "https://[::1]/"),
    ("logo_url", "https://192.168.1.1/logo.png"),
])
def test_the_api_refuses_internal_urls_at_save(settings, admin_a, tenant_a, field, url):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    response = token_client(admin_a).patch("/api/v1/tenants/alpha/", {field: url}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert getattr(Tenant.objects.get(pk=tenant_a.pk), field) == ""


def test_an_allow_listed_on_premises_jamf_is_accepted_but_never_metadata(settings, admin_a, tenant_a):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = ["10.0.0.5", "169.254.169.254"]
    client = token_client(admin_a)
    assert client.patch("/api/v1/tenants/alpha/", {"jamf_url": "https://10.0.0.5:8443/"}, format="json") \
        .status_code == 200
    response = client.patch("/api/v1/tenants/alpha/", {"jamf_url": "https://169.254.169.254/"}, format="json")
    assert response.status_code == 400 and "metadata" in str(response.json()["jamf_url"])


def test_a_name_that_does_not_resolve_is_accepted_at_save(settings):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    validate_outbound_url("https://jamf.invalid/")  # checked again on every connection
    with pytest.raises(ValidationError):
        validate_outbound_url("https://169.254.169.254/")


def test_the_connection_is_refused_when_the_allow_list_no_longer_holds_the_host(simulator, jamf, tenant_a, settings):
    connect(tenant_a, simulator, count=3)  # saved while the simulator's loopback host was allow-listed
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    with JamfClient.from_tenant(tenant_a, sleep=lambda s: None) as client, pytest.raises(JamfError) as excinfo:
        client.computers_page(0)
    assert "not public" in str(excinfo.value)


def test_dns_that_changes_after_the_check_is_caught_on_the_connected_address(simulator, jamf, tenant_a, settings,
                                                                              monkeypatch):
    """The name resolves to a public address when checked, then to loopback when connecting (DNS rebinding)."""
    connect(tenant_a, simulator, count=3)
    port = simulator.base_url.rsplit(":", 1)[1].split("/")[0]
    tenant_a.jamf_url = tenant_a.jamf_url.replace("127.0.0.1", "jamf.rebind.test")
    tenant_a.save()
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = []
    real = socket.getaddrinfo
    answers = []

    def rebinding(host, *args, **kwargs):
        if host == "jamf.rebind.test":
            answers.append(host)
            ip = "93.184.216.34" if len(answers) % 2 else "127.0.0.1"  # public for the check, then loopback
            return real(ip, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with JamfClient.from_tenant(tenant_a, sleep=lambda s: None, max_retries=0) as client, \
            pytest.raises(JamfError) as excinfo:
        client.computers_page(0)
    assert len(answers) >= 2 and port
    assert "jamf.rebind.test" in str(excinfo.value) and "not public" in str(excinfo.value)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def plain_tcp_server():
    """An open port that is not TLS: it accepts and answers plain text (an SSLError for a client)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


def test_errors_do_not_tell_open_ports_from_closed_ones(settings, plain_tcp_server, tenant_a):
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    messages = []
    for port in (_closed_port(), plain_tcp_server):
        client = JamfClient("https://127.0.0.1:%d" % port, "id", "secret", sleep=lambda s: None, max_retries=0)
        ok, message = client.test_connection()
        client.close()
        assert not ok
        messages.append(message.replace(str(port), "PORT"))
    assert messages[0] == messages[1], messages
    for word in ("SSL", "refused", "Errno", "ConnectionError", "Timeout"):
        assert word not in messages[0]
