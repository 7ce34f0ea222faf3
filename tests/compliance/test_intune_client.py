"""The Intune client over real HTTPS against the simulator, with the real msal and requests."""

import datetime
import logging
import time
import uuid

import pytest
from django.utils import timezone

from compliance.intune.client import IntuneClient, jwt_claims
from compliance.intune.errors import IntuneError
from tests.compliance.intune_helpers import SECRET, connect, entities, microsoft
from tests.factories import ClientSecretFactory

pytestmark = pytest.mark.django_db


def client_for(tenant, **kwargs):
    return IntuneClient.from_tenant(tenant, **kwargs)


# -- tokens ------------------------------------------------------------------------------------


def test_token_success_saves_the_tenant_guid_from_tid(simulator, tenant_a):
    sim_tenant = connect(simulator, tenant_a)
    client = client_for(tenant_a)
    token = client.token("graph")
    claims = jwt_claims(token)
    assert claims["tid"] == sim_tenant.id
    assert claims["aud"] == "https://graph.microsoft.com"
    tenant_a.refresh_from_db()
    assert str(tenant_a.entra_tenant_id) == sim_tenant.id
    intune = client.token("intune")
    assert jwt_claims(intune)["aud"] == "https://api.manage.microsoft.com"


def test_tokens_come_from_msal_cache_across_clients(simulator, tenant_a):
    connect(simulator, tenant_a)
    first = client_for(tenant_a).token("graph")
    second = client_for(tenant_a).token("graph")  # a new client object: the msal app is kept in-process
    assert first == second
    assert simulator.counts["route:entra_token"] == 1
    assert simulator.counts["route:entra_openid"] == 1
    assert client_for(tenant_a).token("graph", fresh=True) != first
    assert simulator.counts["route:entra_token"] == 2


@pytest.mark.parametrize(
    "setup, code, aadsts, advice",
    [
        ("wrong_secret", "invalid_secret", 7000215, "not its Secret ID"),
        ("expired_secret", "secret_expired", 7000222, "Add a new client secret"),
        ("unknown_app", "app_not_found", 700016, "admin consent"),
        ("no_consent", "consent_missing", 65001, "Global Administrator"),
    ],
)
def test_each_entra_error_gives_its_advice(simulator, tenant_a, setup, code, aadsts, advice):
    ms = microsoft(simulator)
    ClientSecretFactory(tenant=tenant_a, value=SECRET)
    if setup == "wrong_secret":
        ms.register(tenant_a.entra_tenant, tenant_a.client_id, ["another-secret-value"])
    elif setup == "expired_secret":
        ms.register(tenant_a.entra_tenant, tenant_a.client_id, [SECRET])
        ms.expire_secret(tenant_a.entra_tenant)
    elif setup == "unknown_app":
        ms.register(tenant_a.entra_tenant, str(uuid.uuid4()), [SECRET])
    elif setup == "no_consent":
        ms.register(tenant_a.entra_tenant, tenant_a.client_id, [SECRET], consent=False)
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).token("graph")
    assert info.value.code == code
    assert info.value.problem.aadsts == aadsts
    assert advice in info.value.problem.advice
    assert "AADSTS%d" % aadsts in info.value.detail  # the raw answer, for support
    assert SECRET not in str(info.value) and SECRET not in info.value.detail


def test_unknown_tenant_fails_when_msal_reads_the_openid_configuration(simulator, tenant_a):
    ClientSecretFactory(tenant=tenant_a, value=SECRET)  # nothing registered in the simulated Entra ID
    client = client_for(tenant_a)
    with pytest.raises(IntuneError) as info:
        client.check_tenant()
    assert info.value.code == "tenant_not_found"
    assert info.value.problem.aadsts == 90002
    assert "cloud" in info.value.problem.advice
    with pytest.raises(IntuneError) as info:
        client.token("graph")
    assert info.value.code == "tenant_not_found"


def test_no_intune_licence_is_explained(simulator, tenant_a):
    connect(simulator, tenant_a, intune_licensed=False)
    client = client_for(tenant_a)
    client.token("graph")
    with pytest.raises(IntuneError) as info:
        client.token("intune")
    assert info.value.code == "no_intune_licence"
    assert info.value.problem.aadsts == 500011


def test_secret_rotation_falls_back_to_the_older_secret(simulator, tenant_a, caplog):
    now = timezone.now()
    ClientSecretFactory(tenant=tenant_a, value="new-secret-not-yet-in-entra", expires_at=now + datetime.timedelta(300))
    ClientSecretFactory(tenant=tenant_a, value="old-secret-still-valid", expires_at=now + datetime.timedelta(20))
    microsoft(simulator).register(tenant_a.entra_tenant, tenant_a.client_id, ["old-secret-still-valid"])
    with caplog.at_level(logging.WARNING):
        token = client_for(tenant_a).token("graph")
    assert jwt_claims(token)["appid"] == tenant_a.client_id
    assert simulator.counts["route:entra_token"] == 2  # the newest was tried first, then the older one
    assert "trying the next one" in caplog.text
    assert "new-secret-not-yet-in-entra" not in caplog.text and "old-secret-still-valid" not in caplog.text


def test_expired_secrets_are_never_tried(simulator, tenant_a):
    ClientSecretFactory(tenant=tenant_a, value=SECRET, expires_at=timezone.now() - datetime.timedelta(days=1))
    microsoft(simulator).register(tenant_a.entra_tenant, tenant_a.client_id, [SECRET])  # Entra would accept it
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a)
    assert info.value.code == "no_secret"
    assert simulator.counts["route:entra_token"] == 0


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_finds_the_partner_services_and_is_cached(simulator, tenant_a):
    connect(simulator, tenant_a)
    endpoints = client_for(tenant_a).endpoints()
    assert endpoints.tenant_sync == simulator.base_url + "/intune/PartnerTenantDataSyncService"
    assert endpoints.device_sync == simulator.base_url + "/intune/PartnerDeviceDataSyncService"
    assert client_for(tenant_a).endpoints() == endpoints
    assert simulator.counts["route:graph_service_principals"] == 1
    assert simulator.counts["route:graph_endpoints"] == 1


def test_discovery_denied_without_application_read_all(simulator, tenant_a):
    connect(simulator, tenant_a, graph_roles=["Device.ReadWrite.All"])
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).endpoints()
    assert info.value.code == "discovery_denied"
    assert "Application.Read.All" in info.value.problem.advice
    assert info.value.status == 403


# -- provisioning and the partner policy -----------------------------------------------------------


def test_provisioning_and_deprovisioning(simulator, tenant_a):
    sim_tenant = connect(simulator, tenant_a)
    client = client_for(tenant_a)
    assert client.provisioning_state() is None
    client.provision("https://portal.example/l/alpha/enroll", "https://portal.example/l/alpha/remediate")
    assert sim_tenant.partner["Provisioned"] == 1
    assert sim_tenant.partner["PartnerEnrollmentUrl"] == "https://portal.example/l/alpha/enroll"
    assert client.provisioning_state() == 1
    client.deprovision()
    assert client.provisioning_state() == 2
    assert sim_tenant.partner["PartnerRemediationUrl"] == "https://portal.example/l/alpha/remediate"  # kept


def test_provisioning_refused_without_the_partner_connector(simulator, tenant_a):
    connect(simulator, tenant_a, partner_connector=False)
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).provision("https://portal.example/e", "https://portal.example/r")
    assert info.value.code == "provisioning_refused"
    assert "partner compliance connector" in info.value.problem.advice


def test_partner_policy_created_once_then_found_and_assigned(simulator, tenant_a):
    sim_tenant = connect(simulator, tenant_a)
    group_a, group_b = str(uuid.uuid4()), str(uuid.uuid4())
    first = client_for(tenant_a).ensure_partner_policy([group_a])
    second = client_for(tenant_a).ensure_partner_policy([group_a, group_b])
    assert first.created and not second.created
    assert first.id == second.id
    assert len(sim_tenant.policies) == 1
    policy = sim_tenant.policies[first.id]
    assert policy["Platform"] == "macOS" and policy["PartnerManagedCompliance"] is True
    assert sorted(policy["Assignments"]) == sorted([group_a, group_b])
    assert simulator.counts["route:intune_policy_create"] == 2  # the second POST got its 409


# -- device state ----------------------------------------------------------------------------------


def test_upload_and_status(simulator, tenant_a):
    sim_tenant = connect(simulator, tenant_a)
    client = client_for(tenant_a)
    device, user = str(uuid.uuid4()), str(uuid.uuid4())
    message_id = uuid.uuid4()
    client.upload(message_id, entities(client.tenant_id, device, user, status="notCompliant"))
    status = client.message_status(message_id)
    assert status.status == "Completed" and status.done and not status.error_code
    held = microsoft(simulator).device(sim_tenant.id, device)[user]
    assert held["compliance"]["complianceStatus"] == "notCompliant"
    assert held["inventory"]["EasIds"] == []
    assert client.message_status(uuid.uuid4()).status == "NotFound"


def test_the_same_message_id_is_applied_once(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    message_id = uuid.uuid4()
    payload = entities(client.tenant_id)
    client.upload(message_id, payload)
    client.upload(message_id, payload)
    stats = microsoft(simulator).stats
    assert stats["uploads_applied"] == 1 and stats["uploads_duplicate"] == 1


def test_failed_message_reports_intunes_error(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    payload = entities(client.tenant_id)
    simulator.set_faults(failing_devices={payload[0]["DeviceId"]: "DeviceNotFound: not registered in Entra ID"})
    message_id = uuid.uuid4()
    client.upload(message_id, payload)
    status = client.message_status(message_id)
    assert (status.status, status.error_code, status.error_detail) == (
        "Failed", "DeviceNotFound", "not registered in Entra ID"
    )


def test_invalid_upload_is_a_400_with_intunes_detail(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    payload = entities(client.tenant_id)
    del payload[0]["EasIds"]
    with pytest.raises(IntuneError) as info:
        client.upload(uuid.uuid4(), payload)
    assert info.value.code == "bad_request" and info.value.status == 400
    assert "Content[0]: missing EasIds" in info.value.detail
    assert not info.value.retryable


def test_429_retry_after_is_honoured(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    client.endpoints()
    simulator.set_faults(throttle_uploads=1, retry_after=1)
    message_id = uuid.uuid4()
    client.upload(message_id, entities(client.tenant_id))
    assert client.waits == [1.0]
    log = [entry for entry in microsoft(simulator).uploads if entry[1] == str(message_id)]
    assert [outcome for _at, _id, outcome in log] == [429, 202]
    assert log[1][0] - log[0][0] >= 1.0  # the simulator saw the retry only after Retry-After had passed


def test_throttling_longer_than_the_client_waits_is_left_to_the_caller(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a, max_retry_wait=5)
    client.endpoints()
    simulator.set_faults(throttle_uploads=1, retry_after=120)
    started = time.monotonic()
    with pytest.raises(IntuneError) as info:
        client.upload(uuid.uuid4(), entities(client.tenant_id))
    assert time.monotonic() - started < 60  # it did not sleep the two minutes
    assert info.value.code == "throttled" and info.value.retryable and info.value.retry_after == 120


def test_5xx_and_dropped_connections_are_retried(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a, max_retries=8, max_retry_wait=0.05)
    client.endpoints()
    simulator.set_faults(error_rate=0.3, drop_rate=0.2, paths=["/intune"])
    ids = [uuid.uuid4() for _ in range(10)]
    for message_id in ids:
        client.upload(message_id, entities(client.tenant_id))
    simulator.set_faults(error_rate=0.0, drop_rate=0.0)
    assert all(client.message_status(m).status == "Completed" for m in ids)
    assert microsoft(simulator).stats["uploads_applied"] == 10
    assert simulator.counts["fault:503"] + simulator.counts["fault:drop"] > 0


@pytest.mark.parametrize("status", [503, 429])
def test_a_token_endpoint_outage_is_retried_past_msals_own_replay(simulator, tenant_a, status):
    connect(simulator, tenant_a)
    client = client_for(tenant_a, max_retries=3)
    simulator.set_faults(fail_tokens=1, fail_tokens_status=status, retry_after=0.2)
    token = client.token("graph")
    assert jwt_claims(token)["tid"]
    assert simulator.counts["microsoft:failed_token:%d" % status] == 1
    assert simulator.counts["route:entra_token"] == 2
    # msal alone would replay that answer for seconds; the client waited once and asked Entra again.
    assert len(client.waits) == 1
    assert client.token("graph") == token  # and the msal app it kept is healthy


def test_a_401_is_retried_once_with_a_fresh_token(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    simulator.set_faults(reject_fresh_tokens=1)
    client.endpoints()
    assert simulator.counts["microsoft:rejected_fresh_token"] == 1
    assert simulator.counts["route:graph_service_principals"] == 2
    assert simulator.counts["route:entra_token"] == 2  # the rejected token was dropped from msal's cache


def test_a_second_401_is_not_retried_again(simulator, tenant_a):
    connect(simulator, tenant_a)
    simulator.set_faults(reject_fresh_tokens=2)
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).endpoints()
    assert info.value.code == "unauthorized"
    assert simulator.counts["route:graph_service_principals"] == 2


def test_a_token_that_expires_mid_run_is_replaced(simulator, tenant_a):
    connect(simulator, tenant_a)
    simulator.set_faults(token_valid_for=0.5)  # msal believes it lives an hour and serves it from its cache
    client = client_for(tenant_a)
    client.upload(uuid.uuid4(), entities(client.tenant_id))
    tokens = microsoft(simulator).stats["tokens"]
    time.sleep(0.6)
    simulator.set_faults(token_valid_for=0)
    client.upload(uuid.uuid4(), entities(client.tenant_id))
    assert microsoft(simulator).stats["uploads_applied"] == 2
    assert microsoft(simulator).stats["tokens"] == tokens + 1  # the 401 fetched one fresh token


# -- Graph: delete and read back -------------------------------------------------------------------


def test_delete_device_from_entra_and_intune(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    payload = entities(client.tenant_id)
    device = payload[0]["DeviceId"]
    client.upload(uuid.uuid4(), payload)
    assert [d["azureADDeviceId"] for d in client.managed_devices()] == [device]
    assert client.delete_device(device)["entra"] == "deleted"
    assert list(client.managed_devices()) == []
    again = client.delete_device(device)
    assert again == {"entra": "not_found", "intune": "not_found", "managed_device_ids": []}


def test_managed_devices_pages_and_reports_compliance(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    batch = []
    for n in range(5):
        batch += entities(client.tenant_id, status="compliant" if n % 2 else "notCompliant")
    client.upload(uuid.uuid4(), batch)
    devices = list(client.managed_devices(page_size=2))
    assert len(devices) == 5
    assert simulator.counts["route:graph_managed_devices"] == 3
    assert sorted(d["complianceState"] for d in devices) == ["compliant"] * 2 + ["noncompliant"] * 3
    assert {d["managementAgent"] for d in devices} == {"jamf"}


# -- network failures --------------------------------------------------------------------------------


def test_tls_failure_is_explained(simulator, tenant_a, settings, tmp_path):
    connect(simulator, tenant_a)
    from simulator.certs import make_certificates

    other_ca, _cert, _key = make_certificates(tmp_path)  # a CA the simulator's certificate does not chain to
    settings.PORTAL_CA_BUNDLE = str(other_ca)
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).token("graph")
    assert info.value.code == "tls"


def test_dns_failure_is_explained(simulator, tenant_a, settings):
    connect(simulator, tenant_a)
    settings.PORTAL_CLOUD_OVERRIDES = {"global": {"login": "https://login.portal-test.invalid"}}
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).token("graph")
    assert info.value.code == "dns"
    assert "firewall" in info.value.problem.advice or "DNS" in info.value.problem.advice


def test_timeout_is_explained(simulator, tenant_a):
    connect(simulator, tenant_a)
    client = client_for(tenant_a, timeout=(2, 0.3), max_retries=0)
    client.endpoints()
    simulator.set_faults(latency_ms=800, paths=["/intune"])
    with pytest.raises(IntuneError) as info:
        client.upload(uuid.uuid4(), entities(client.tenant_id))
    assert info.value.code == "timeout" and info.value.retryable


def test_connection_refused_is_explained(tenant_a, settings, simulator):
    connect(simulator, tenant_a)
    import socket

    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PORTAL_CLOUD_OVERRIDES = {"global": {"login": "https://127.0.0.1:%d" % port}}
    with pytest.raises(IntuneError) as info:
        client_for(tenant_a).token("graph")
    assert info.value.code == "connection"


def test_sovereign_clouds_use_their_own_resources(simulator, tenant_a):
    tenant_a.cloud = "usgov"
    tenant_a.save()
    connect(simulator, tenant_a)
    client = client_for(tenant_a)
    assert jwt_claims(client.token("graph"))["aud"] == "https://graph.microsoft.us"
    assert jwt_claims(client.token("intune"))["aud"] == "https://api.manage.microsoft.us"


@pytest.mark.parametrize("environment", [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128"},
    {"https_proxy": "http://proxy.example:3128", "no_proxy": "intune.example"},
    {"ALL_PROXY": "http://all.example:8080", "NO_PROXY": "other.example"},
    {"HTTP_PROXY": "http://cgi.example:1", "REQUEST_METHOD": "GET"},
    {"REQUESTS_CA_BUNDLE": "/tmp/ca.pem"},
])
def test_session_merges_the_environment_as_requests_does(monkeypatch, environment):
    # PortalSession looks the environment's proxies up once per host and proxy settings; the merged settings must be
    # requests' own, also after a proxy variable changes.
    import requests

    from compliance.intune.client import PortalSession
    from portal.http import PROXY_VARIABLES

    for name in (*PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    session, plain = PortalSession(True, 10), requests.Session()
    for url in ("https://intune.example/x", "https://login.example/y", "http://intune.example:8080/z"):
        for verify in (True, "/etc/ca.pem"):
            assert session.merge_environment_settings(url, {}, None, verify, None) == \
                plain.merge_environment_settings(url, {}, None, verify, None)
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            assert session.merge_environment_settings(url, {}, None, verify, None) == \
                plain.merge_environment_settings(url, {}, None, verify, None)
            for name in environment:
                monkeypatch.delenv(name)
