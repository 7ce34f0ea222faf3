"""Admin consent: the signed, expiring, single-use state; the simulator's consent endpoint redirecting back to the
portal's callback; every answer (granted, tampered, replayed, expired, declined, wrong tenant) explained."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import signing
from django.urls import reverse

from compliance import connection, consent
from portal.models import AuditEvent, Tenant
from tests.compliance.partner_helpers import PARTNER_ID, partner_app, partner_tenant, register_partner

pytestmark = pytest.mark.django_db

CALLBACK = reverse("entra-consent-callback")


@pytest.fixture
def onboarding(simulator, msp_user, settings):
    """A partner app in the portal and Entra ID, and a new customer tenant that has not consented yet."""
    settings.PORTAL_BASE_URL = "https://portal.example"
    partner_app()
    register_partner(simulator, redirect_uris=["https://portal.example/consent/callback/"])
    tenant, sim_tenant = partner_tenant(simulator, consent=False)
    return tenant, sim_tenant


def follow_consent(simulator, url):
    """Open the consent link at the simulated Entra ID; return the query Entra redirects back to the portal with."""
    response = requests.get(url, verify=str(simulator.ca_path), timeout=10, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith("https://portal.example/consent/callback/?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_the_link_names_the_partner_app_the_callback_and_a_signed_state(onboarding, msp_user):
    tenant, _ = onboarding
    url = connection.admin_consent_url(tenant, msp_user)
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [PARTNER_ID]
    assert query["redirect_uri"] == ["https://portal.example/consent/callback/"]
    payload = signing.loads(query["state"][0], salt=consent.SALT)
    assert payload["t"] == tenant.pk and payload["u"] == "msp" and payload["n"]


def test_granted_consent_is_recorded_and_the_test_passes(onboarding, simulator, client, msp_user):
    tenant, sim_tenant = onboarding
    assert connection.test_connection(tenant).failed_step.code == "app_not_found"
    answer = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    assert answer["admin_consent"] == "True" and answer["tenant"] == sim_tenant.id
    response = client.get(CALLBACK, answer)  # the customer's admin need not be signed in to the portal
    assert response.status_code == 200
    text = response.content.decode()
    assert "Entra ID confirmed admin consent" in text and "Test connection" in text
    tenant.refresh_from_db()
    assert tenant.consent_granted_at is not None and tenant.consent_granted_by == "msp"
    assert str(tenant.entra_tenant_id) == sim_tenant.id
    assert connection.test_connection(tenant).ok
    # The audit trail has it: the tenant, the Entra tenant granted, who issued the link, the answer's address.
    entry = AuditEvent.objects.get(event="admin_consent")
    assert entry.tenant_id == tenant.pk and entry.actor is None and entry.remote_addr == "127.0.0.1"
    assert entry.additional_data == {"granted_in": sim_tenant.id, "link_issued_by": "msp"}
    assert entry.changes["entra_tenant_id"][1] == sim_tenant.id


def test_replayed_state_is_refused(onboarding, simulator, client, msp_user):
    tenant, _ = onboarding
    answer = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    assert client.get(CALLBACK, answer).status_code == 200
    Tenant.objects.filter(pk=tenant.pk).update(consent_granted_at=None)
    response = client.get(CALLBACK, answer)
    assert response.status_code == 400 and "already used" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.consent_granted_at is None


def test_tampered_state_is_refused(onboarding, simulator, client, msp_user, tenant_b):
    tenant, _ = onboarding
    answer = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    forged = signing.dumps({"t": tenant_b.pk, "n": "x"}, salt="another-salt", compress=True)
    for state in (answer["state"][:-3] + "abc", forged, ""):
        response = client.get(CALLBACK, {**answer, "state": state})
        assert response.status_code == 400
    text = response.content.decode()
    assert "incomplete" in text
    assert not Tenant.objects.filter(consent_granted_at__isnull=False).exists()


def test_expired_state_is_refused(onboarding, simulator, client, msp_user, settings):
    tenant, _ = onboarding
    answer = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    settings.CONSENT_STATE_MAX_AGE = -1
    response = client.get(CALLBACK, answer)
    assert response.status_code == 400 and "expired" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.consent_granted_at is None


@pytest.mark.parametrize(
    "answer, words",
    [
        ("declined", "declined to consent"),
        ("error:50011:The redirect URI does not match.", "redirect URI"),
        ("error:50020:User account from identity provider does not exist.", "does not belong to this tenant"),
        ("error:12345:Something new.", "did not grant consent"),
    ],
)
def test_entra_errors_become_plain_advice(onboarding, simulator, client, msp_user, answer, words):
    tenant, _ = onboarding
    simulator.set_faults(consent_answer={tenant.entra_tenant: answer})
    query = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    assert query["error"] and query["error_description"].startswith("AADSTS")
    response = client.get(CALLBACK, query)
    text = response.content.decode()
    assert words in text and "What to do" in text
    tenant.refresh_from_db()
    assert tenant.consent_granted_at is None
    entry = AuditEvent.objects.get(event="admin_consent_refused")
    assert entry.tenant_id == tenant.pk and entry.additional_data["error"] == query["error"]
    assert not AuditEvent.objects.filter(event="admin_consent").exists()


def test_consent_in_another_tenant_is_refused(onboarding, simulator, client, msp_user):
    tenant, sim_tenant = onboarding
    Tenant.objects.filter(pk=tenant.pk).update(entra_tenant_id=sim_tenant.id)
    tenant.refresh_from_db()
    simulator.set_faults(consent_answer={tenant.entra_tenant: "other_tenant:11111111-2222-4333-8444-666666666666"})
    query = follow_consent(simulator, connection.admin_consent_url(tenant, msp_user))
    response = client.get(CALLBACK, query)
    assert "Consent was granted in another tenant" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.consent_granted_at is None and str(tenant.entra_tenant_id) == sim_tenant.id


def test_unregistered_redirect_uri_is_refused_by_entra(onboarding, simulator, msp_user, settings):
    tenant, _ = onboarding
    settings.PORTAL_BASE_URL = "https://elsewhere.example"
    response = requests.get(connection.admin_consent_url(tenant, msp_user), verify=str(simulator.ca_path),
                            timeout=10, allow_redirects=False)
    assert response.status_code == 400 and response.json()["error_codes"] == [50011]


def test_tenant_page_offers_the_consent_link_to_admins_only(onboarding, client, msp_user, simulator):
    tenant, _ = onboarding
    from tests.conftest import member

    client.force_login(msp_user)
    text = client.get(reverse("admin:portal_tenant_change", args=[tenant.pk])).content.decode()
    assert "/adminconsent?client_id=%s" % PARTNER_ID in text and "state=" in text
    assert "not recorded yet" in text  # the onboarding panel
    operator = member(tenant, "operator")
    client.force_login(operator)
    text = client.get(reverse("admin:portal_tenant_change", args=[tenant.pk])).content.decode()
    assert "/adminconsent?" not in text
