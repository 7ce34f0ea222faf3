"""Partner mode over real HTTPS (msal + requests against the simulator): certificate and secret credentials,
rollover, the Intune-side step of Test connection, the per-tenant override, and reports sent with the partner app."""

import base64
import datetime
import time
import uuid

import jwt
import pytest
import requests
from django.utils import timezone

from compliance import connection
from compliance.intune import client as client_module
from compliance.intune.client import IntuneClient
from tests.compliance.intune_helpers import connect, entities, microsoft
from tests.compliance.partner_helpers import (
    PARTNER_ID,
    PARTNER_SECRET,
    add_certificate,
    add_secret,
    certificate,
    partner_app,
    partner_tenant,
    register_partner,
)

pytestmark = pytest.mark.django_db

STEP_KEYS = [key for key, _name in connection.STEPS]


def outcome(result):
    return [(s.key, s.ok) for s in result.steps]


def fails_at(result, key):
    index = STEP_KEYS.index(key)
    return outcome(result) == (
        [(k, True) for k in STEP_KEYS[:index]] + [(key, False)] + [(k, None) for k in STEP_KEYS[index + 1:]]
    )


def test_certificate_credential_passes_every_step(simulator):
    partner_app(certificates=(0,))
    register_partner(simulator, certificates=(0,))
    tenant, sim_tenant = partner_tenant(simulator)
    result = connection.test_connection(tenant)
    assert outcome(result) == [(k, True) for k in STEP_KEYS], result.summary()
    assert "certificate %s" % certificate(0).thumbprint in result.steps[0].message
    assert "Demo MSP Mac Compliance for macOS: state enabled, 1 group(s)" in result.steps[5].message
    tenant.refresh_from_db()
    assert str(tenant.entra_tenant_id) == sim_tenant.id
    assert tenant.intune_partner["state"] == "enabled" and tenant.intune_partner["macos_onboarded"]
    assert microsoft(simulator).assertion_ids  # the tokens came from signed client assertions, not a secret
    assert not tenant.client_secrets.exists()


def test_partner_client_secret_passes_and_reports_go_out(simulator):
    partner_app(certificates=(), secrets=[PARTNER_SECRET])
    register_partner(simulator, certificates=(), secrets=[PARTNER_SECRET])
    tenant, sim_tenant = partner_tenant(simulator)
    assert connection.test_connection(tenant).ok
    client = IntuneClient.from_tenant(tenant)
    client.provision("https://portal.example/r/x/", "https://portal.example/r/x/remediation/")
    device = str(uuid.uuid4())
    client.upload(uuid.uuid4(), entities(sim_tenant.id, device_id=device))
    assert microsoft(simulator).device(sim_tenant.id, device)


def test_rollover_tries_the_next_certificate_when_entra_does_not_know_the_newest(simulator):
    app = partner_app(certificates=(0,))
    newest = add_certificate(app, certificate(1), expires_at=timezone.now() + datetime.timedelta(days=700))
    register_partner(simulator, certificates=(0,))  # the new certificate is not uploaded to Entra ID yet
    tenant, _ = partner_tenant(simulator)
    client = IntuneClient.from_tenant(tenant)
    assert client._credentials[0].thumbprint == newest.thumbprint  # newest expiry first
    assert client.token("graph", fresh=True)
    assert client_module._bad_secrets.get(client._credentials[0].key)  # refused (AADSTS700027), skipped a while
    assert simulator.counts["route:entra_token"] == 2


def test_rollover_of_secrets_on_invalid_secret(simulator):
    app = partner_app(certificates=(), secrets=["old~partner~secret~1234567"])
    add_secret(app, "new~partner~secret~not~in~entra", days=400)
    register_partner(simulator, certificates=(), secrets=["old~partner~secret~1234567"])
    tenant, _ = partner_tenant(simulator)
    assert connection.test_connection(tenant).ok


def test_unknown_certificate_fails_with_the_upload_advice(simulator):
    partner_app(certificates=(1,))
    register_partner(simulator, certificates=(0,))
    tenant, _ = partner_tenant(simulator)
    result = connection.test_connection(tenant)
    assert fails_at(result, "graph_token"), result.summary()
    assert result.failed_step.code == "certificate_unknown"
    assert "upload it to the app registration" in result.failed_step.advice
    assert "PRIVATE KEY" not in result.summary() + result.failed_step.detail


def test_no_consent_fails_with_the_consent_advice(simulator):
    partner_app()
    register_partner(simulator)
    tenant, _ = partner_tenant(simulator, consent=False)
    result = connection.test_connection(tenant)
    assert fails_at(result, "graph_token") and result.failed_step.code == "app_not_found"
    assert "Grant admin consent" in result.failed_step.advice


def test_no_partner_application_fails_at_settings(simulator):
    tenant, _ = partner_tenant(simulator)
    result = connection.test_connection(tenant)
    assert fails_at(result, "settings") and result.failed_step.code == "no_partner_app"


@pytest.mark.parametrize(
    "shape, code",
    [
        ("missing", "partner_missing"),
        ("not_onboarded", "partner_not_onboarded"),
        ("unresponsive", "partner_state"),
        ("terminated", "partner_state"),
        ("no_groups", "partner_no_groups"),
    ],
)
def test_every_outcome_of_the_intune_side_step(simulator, shape, code):
    partner_app()
    register_partner(simulator)
    tenant, _ = partner_tenant(simulator)
    simulator.set_faults(compliance_partner={tenant.entra_tenant: shape})
    result = connection.test_connection(tenant)
    assert fails_at(result, "intune_partner"), result.summary()
    step = result.failed_step
    assert step.code == code
    assert "Intune admin center" in step.advice and "Partner compliance management" in step.advice
    tenant.refresh_from_db()
    assert tenant.intune_partner["found"] is (shape != "missing")
    if shape in ("unresponsive", "terminated"):
        assert shape in step.message


def test_missing_graph_permission_for_the_partner_step_names_it(simulator):
    partner_app()
    register_partner(simulator, graph_roles=["Application.Read.All"])
    tenant, _ = partner_tenant(simulator)
    result = connection.test_connection(tenant)
    assert fails_at(result, "intune_partner") and result.failed_step.code == "partners_denied"
    assert "DeviceManagementServiceConfig.Read.All" in result.failed_step.advice


def test_override_uses_the_tenants_own_app(simulator, tenant_a):
    partner_app()
    register_partner(simulator)
    connect(simulator, tenant_a)  # own app + secret (the factory's use_own_app)
    result = connection.test_connection(tenant_a)
    assert result.ok, result.summary()
    assert "own application %s (override)" % tenant_a.client_id in result.steps[0].message
    assert not microsoft(simulator).assertion_ids  # the partner's certificate was not used


def test_legacy_inventory_mode_skips_the_partner_step(simulator, tenant_a):
    tenant_a.reporting_mode = "inventory"
    tenant_a.use_own_app = False  # inventory mode always uses the own app
    tenant_a.save()
    connect(simulator, tenant_a)
    result = connection.test_connection(tenant_a)
    assert result.ok, result.summary()
    assert "legacy inventory mode" in result.steps[5].message


def test_environment_credentials_are_used(simulator, settings):
    made = certificate(2)
    settings.PORTAL_PARTNER_APP = {"client_id": PARTNER_ID, "display_name": "Demo MSP Mac Compliance",
                                   "certificate_pem": made.private_key_pem + made.certificate_pem}
    register_partner(simulator, certificates=(2,))
    tenant, _ = partner_tenant(simulator)
    assert connection.test_connection(tenant).ok


# -- the simulated token endpoint checks assertions as Entra does -------------------------------------


def token_request(simulator, tenant_name, assertion):
    return requests.post(
        "%s/%s/oauth2/v2.0/token" % (simulator.base_url, tenant_name),
        data={"grant_type": "client_credentials", "client_id": PARTNER_ID,
              "scope": "https://graph.microsoft.com/.default",
              "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
              "client_assertion": assertion},
        verify=str(simulator.ca_path), timeout=10,
    )


def assertion(simulator, sim_tenant_id, made=None, **claims):
    """A client assertion as Microsoft's "certificate credentials" page describes it (RS256, x5t = SHA-1)."""
    made = made or certificate(0)
    x5t = base64.urlsafe_b64encode(bytes.fromhex(made.thumbprint))
    now = int(time.time())
    body = {"aud": "%s/%s/oauth2/v2.0/token" % (simulator.base_url, sim_tenant_id), "iss": PARTNER_ID,
            "sub": PARTNER_ID, "exp": now + 600, "nbf": now, "iat": now, "jti": str(uuid.uuid4())}
    body.update(claims)
    return jwt.encode(body, made.private_key_pem, algorithm="RS256", headers={"x5t": x5t.rstrip(b"=").decode()})


@pytest.mark.parametrize(
    "change, code",
    [
        ({}, None),
        ({"exp": int(time.time()) - 120}, 700024),
        ({"iss": str(uuid.uuid4())}, 700023),
        ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 700021),
        ({"made": 1}, 700027),
    ],
)
def test_assertion_checks(simulator, change, code):
    register_partner(simulator, certificates=(0,))
    _tenant, sim_tenant = partner_tenant(simulator)
    made = certificate(change.pop("made")) if "made" in change else None
    response = token_request(simulator, sim_tenant.id, assertion(simulator, sim_tenant.id, made, **change))
    if code is None:
        assert response.status_code == 200 and response.json()["access_token"]
    else:
        assert response.status_code in (400, 401)
        assert response.json()["error_codes"] == [code]


def test_a_jti_is_not_accepted_on_another_assertion(simulator):
    register_partner(simulator, certificates=(0,))
    _tenant, sim_tenant = partner_tenant(simulator)
    first = assertion(simulator, sim_tenant.id, jti="same-jti")
    assert token_request(simulator, sim_tenant.id, first).status_code == 200
    assert token_request(simulator, sim_tenant.id, first).status_code == 200  # msal reuses one; Entra accepts it
    other = assertion(simulator, sim_tenant.id, jti="same-jti", exp=int(time.time()) + 300)
    response = token_request(simulator, sim_tenant.id, other)
    assert response.status_code == 401 and response.json()["error_codes"] == [50027]


def test_expired_certificate_is_refused(simulator):
    register_partner(simulator, certificates=(0,))
    _tenant, sim_tenant = partner_tenant(simulator)
    app = microsoft(simulator).partner_apps[PARTNER_ID]
    app.certificates[0].expires_at = timezone.now() - datetime.timedelta(seconds=1)
    response = token_request(simulator, sim_tenant.id, assertion(simulator, sim_tenant.id))
    assert response.json()["error_codes"] == [700027] and "expired" in response.json()["error_description"]


def test_msal_sha1_thumbprint_form_is_accepted_too(simulator):
    """msal's older form ({"private_key", "thumbprint"}: RS256 with x5t) works against the simulator as well."""
    import msal

    register_partner(simulator, certificates=(0,))
    _tenant, sim_tenant = partner_tenant(simulator)
    made = certificate(0)
    app = msal.ConfidentialClientApplication(
        PARTNER_ID, client_credential={"private_key": made.private_key_pem, "thumbprint": made.thumbprint},
        authority="%s/%s" % (simulator.base_url, sim_tenant.id), instance_discovery=False,
        http_client=client_module.PortalSession(str(simulator.ca_path), (5, 15)),
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
