"""The simulated Entra ID, Graph and Intune partner service, spoken to directly over HTTPS (and by msal)."""

import datetime
import json
import time
import uuid

import msal
import pytest
import requests

from simulator.management.commands.runsimulator import seed_from_database
from tests.compliance.intune_helpers import entities, microsoft
from tests.factories import ClientSecretFactory, TenantFactory

APP = "22222222-3333-4444-8555-666666666666"
SECRET = "sim-secret~value"
NAME = "sim.onmicrosoft.com"


def call(sim, method, path, **kwargs):
    return requests.request(method, sim.base_url + path, verify=str(sim.ca_path), timeout=5, **kwargs)


def token(sim, scope="https://api.manage.microsoft.com//.default", tenant=NAME, secret=SECRET):
    response = call(sim, "POST", "/%s/oauth2/v2.0/token" % tenant, data={
        "grant_type": "client_credentials", "client_id": APP, "client_secret": secret, "scope": scope,
    })
    return response


def bearer(sim, **kwargs):
    return {"Authorization": "Bearer " + token(sim, **kwargs).json()["access_token"]}


@pytest.fixture
def registered(simulator):
    return microsoft(simulator).register(NAME, APP, [SECRET])


def upload(sim, body, message_id=None, headers=None):
    message_id = message_id or str(uuid.uuid4())
    return call(
        sim, "PUT", "/intune/PartnerDeviceDataSyncService/DataUploadMessages(guid'%s')" % message_id,
        params={"api-version": "1.2"}, json=body, headers=headers or bearer(sim),
    )


def message(tenant_id, items, when="2025-05-01T10:00:00Z"):
    return {"TenantId": tenant_id, "UploadTime": when, "Content": json.dumps(items)}


# -- Entra ID -----------------------------------------------------------------------------------


def test_msal_reads_the_openid_configuration_and_instance_discovery(simulator, registered):
    app = msal.ConfidentialClientApplication(
        APP, client_credential=SECRET, authority="%s/%s" % (simulator.base_url, NAME),
        instance_discovery=simulator.base_url + "/common/discovery/instance",
        http_client=_VerifyingSession(str(simulator.ca_path)),
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    assert app.authority.tenant == registered.id  # the token endpoint names the tenant GUID
    assert simulator.counts["route:entra_instance_discovery"] == 1
    assert simulator.counts["route:entra_openid"] == 1


class _VerifyingSession(requests.Session):
    def __init__(self, ca):
        super().__init__()
        self.ca = ca

    def request(self, *args, **kwargs):
        kwargs["verify"] = self.ca
        return super().request(*args, **kwargs)


def test_unknown_tenant_openid_configuration_is_entras_400(simulator):
    response = call(simulator, "GET", "/nobody.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002:")


def test_token_errors_have_entras_shape(simulator, registered):
    response = token(simulator, secret="wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert {"trace_id", "correlation_id", "timestamp", "error_uri"} <= set(body)
    assert "wrong" not in json.dumps(body)
    microsoft(simulator).expire_secret(NAME)
    assert token(simulator).json()["error_codes"] == [7000222]


def test_token_is_jwt_shaped_with_tid(simulator, registered):
    access = token(simulator).json()["access_token"]
    header, payload, signature = access.split(".")
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["tid"] == registered.id and claims["appid"] == APP
    assert claims["roles"] == ["update_device_attributes"]
    assert signature == ""  # unsigned: the simulator does not pretend to sign


def test_client_secret_basic_is_accepted(simulator, registered):
    response = requests.post(
        simulator.base_url + "/%s/oauth2/v2.0/token" % NAME, auth=(APP, SECRET), verify=str(simulator.ca_path),
        data={"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}, timeout=5,
    )
    assert response.status_code == 200


# -- Graph and Intune authentication --------------------------------------------------------------------


def test_tokens_are_checked_for_audience_and_issue(simulator, registered):
    graph = bearer(simulator, scope="https://graph.microsoft.com/.default")
    assert upload(simulator, message(registered.id, entities(registered.id)), headers=graph).status_code == 401
    assert upload(simulator, message(registered.id, entities(registered.id)),
                  headers={"Authorization": "Bearer made.up."}).status_code == 401


def test_reject_fresh_tokens_knob(simulator, registered):
    simulator.set_faults(reject_fresh_tokens=1)
    headers = bearer(simulator)
    body = message(registered.id, entities(registered.id))
    assert upload(simulator, body, headers=headers).status_code == 401
    assert upload(simulator, body, headers=headers).status_code == 202  # the same token, used again, passes
    assert simulator.faults.extra["reject_fresh_tokens"] == 0


# -- DataUploadMessages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "breakage, detail",
    [
        (lambda b, e: b.update(Content=e), "Content must be a JSON string"),
        (lambda b, e: b.update(TenantId=str(uuid.uuid4())), "TenantId must be the tenant's ID"),
        (lambda b, e: b.update(UploadTime="yesterday"), "UploadTime must be an ISO 8601 timestamp"),
        (lambda b, e: b.update(Content="[]"), "non-empty JSON list"),
        (lambda b, e: b.update(Content=json.dumps([{**e[0], "EntityType": 2}])), "EntityType must be 1"),
        (lambda b, e: b.update(Content=json.dumps([{**e[0], "State": 3}])), "State must be 0, 1 or 2"),
        (lambda b, e: b.update(Content=json.dumps([{**e[1], "complianceStatus": "ok"}])), "complianceStatus"),
        (lambda b, e: b.update(Content=json.dumps([{**e[0], "DeviceId": "mac-1"}])), "DeviceId must be a GUID"),
        (lambda b, e: b.update(Content=json.dumps([{k: v for k, v in e[0].items() if k != "DeviceName"}])),
         "missing DeviceName"),
    ],
)
def test_invalid_uploads_are_answered_400_with_the_reason(simulator, registered, breakage, detail):
    items = entities(registered.id)
    body = message(registered.id, items)
    breakage(body, items)
    response = upload(simulator, body)
    assert response.status_code == 400
    assert detail in response.json()["error"]["message"]
    assert microsoft(simulator).messages == {}


def test_a_message_id_is_applied_once_and_state_is_kept_per_device(simulator, registered):
    ms = microsoft(simulator)
    device, user = str(uuid.uuid4()), str(uuid.uuid4())
    message_id = str(uuid.uuid4())
    first = entities(registered.id, device, user, when="2025-05-01T10:00:00Z", status="compliant")
    assert upload(simulator, message(registered.id, first), message_id).status_code == 202
    changed = entities(registered.id, device, user, when="2025-05-02T10:00:00Z", status="notCompliant")
    assert upload(simulator, message(registered.id, changed), message_id).status_code == 202  # same ID: ignored
    assert ms.device(NAME, device)[user]["compliance"]["complianceStatus"] == "compliant"
    assert ms.stats["uploads_applied"] == 1 and ms.stats["uploads_duplicate"] == 1


def test_an_older_report_arriving_late_does_not_win(simulator, registered):
    ms = microsoft(simulator)
    device, user = str(uuid.uuid4()), str(uuid.uuid4())
    upload(simulator, message(registered.id, entities(registered.id, device, user, when="2025-05-02T10:00:00Z",
                                                      status="notCompliant")))
    upload(simulator, message(registered.id, entities(registered.id, device, user, when="2025-05-01T10:00:00Z",
                                                      status="compliant")))
    held = ms.device(NAME, device)[user]
    assert held["compliance"]["complianceStatus"] == "notCompliant" and held["stale"] == 2


def test_status_is_processing_until_the_delay_passes(simulator, registered):
    simulator.set_faults(processing_delay=0.3)
    message_id = str(uuid.uuid4())
    assert upload(simulator, message(registered.id, entities(registered.id)), message_id).json()["Status"] == \
        "Processing"
    path = "/intune/PartnerDeviceDataSyncService/DataUploadMessages(guid'%s')" % message_id
    deadline = time.monotonic() + 10
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(call(simulator, "GET", path, params={"api-version": "1.2"}, headers=bearer(simulator))
                        .json()["Status"])
        if statuses[-1] != "Processing":
            break
        time.sleep(0.1)
    assert statuses[-1] == "Completed"


def test_a_deprovisioned_tenant_refuses_uploads(simulator, registered):
    path = "/intune/PartnerTenantDataSyncService/PartnerTenants(guid'%s')" % registered.id
    headers = bearer(simulator)
    response = call(simulator, "PUT", path, params={"api-version": "1.6"}, json={"Provisioned": 2}, headers=headers)
    assert response.status_code == 200
    assert upload(simulator, message(registered.id, entities(registered.id))).status_code == 403


def test_a_tenant_cannot_provision_another(simulator, registered):
    other = microsoft(simulator).register("other.onmicrosoft.com", APP, [SECRET])
    path = "/intune/PartnerTenantDataSyncService/PartnerTenants(guid'%s')" % other.id
    response = call(simulator, "PUT", path, params={"api-version": "1.6"}, json={"Provisioned": 1},
                    headers=bearer(simulator))
    assert response.status_code == 403


def test_wrong_api_version_is_refused(simulator, registered):
    response = call(simulator, "GET", "/intune/PartnerTenantDataSyncService/PartnerCompliancePolicies",
                    params={"api-version": "1.2"}, headers=bearer(simulator))
    assert response.status_code == 400


# -- control and seeding --------------------------------------------------------------------------------


def test_control_endpoint_registers_expires_and_shows_no_secret(simulator):
    response = call(simulator, "POST", "/_sim/microsoft/tenants", json={
        "name": NAME, "client_id": APP, "secrets": [{"value": SECRET, "expires_at": "2099-01-01T00:00:00Z"}],
    })
    assert response.status_code == 200
    assert token(simulator).status_code == 200
    assert call(simulator, "POST", "/_sim/microsoft/expire-secret", json={"tenant": NAME}).json() == {"expired": 1}
    assert token(simulator).json()["error_codes"] == [7000222]
    listing = call(simulator, "GET", "/_sim/microsoft/tenants").text
    assert NAME in listing and SECRET not in listing
    assert SECRET not in call(simulator, "GET", "/_sim/state").text


def test_devices_and_messages_can_be_inspected(simulator, registered):
    items = entities(registered.id)
    message_id = str(uuid.uuid4())
    upload(simulator, message(registered.id, items), message_id)
    devices = call(simulator, "GET", "/_sim/microsoft/devices", params={"tenant": NAME}).json()["devices"]
    assert list(devices) == [items[0]["DeviceId"]]
    assert call(simulator, "GET", "/_sim/microsoft/messages/%s" % message_id).json()["Status"] == "Completed"


@pytest.mark.django_db
def test_seeded_from_the_portal_and_kept_across_reset(simulator):
    from simulator.app import create_simulator
    from simulator.microsoft import MicrosoftService

    tenant = TenantFactory(slug="contoso", entra_tenant="contoso.onmicrosoft.com")
    ClientSecretFactory(tenant=tenant, value="contoso-secret-1")
    expired = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    ClientSecretFactory(tenant=tenant, value="contoso-old", expires_at=expired)
    TenantFactory(slug="unconfigured", entra_tenant="", client_id="")
    sim = create_simulator()  # not started: seeding only fills the registry
    ms = sim.service(MicrosoftService)
    assert seed_from_database(ms) == ["contoso.onmicrosoft.com"]
    sim.reset()
    app = ms.tenant("contoso.onmicrosoft.com").apps[tenant.client_id]
    assert sorted(s.value for s in app.secrets) == ["contoso-old", "contoso-secret-1"]
    assert [s.value for s in app.secrets if s.expires_at.year == 2020] == ["contoso-old"]
