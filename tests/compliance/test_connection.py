"""test_connection: its steps for a healthy and for broken tenants; the command; the admin."""

import datetime
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from compliance import connection
from tests.compliance.intune_helpers import SECRET, connect, microsoft
from tests.factories import ClientSecretFactory

pytestmark = pytest.mark.django_db

STEP_KEYS = ["settings", "tenant", "graph_token", "intune_token", "discovery", "intune_partner", "provisioning"]


def outcome(result):
    return [(s.key, s.ok) for s in result.steps]


def test_healthy_tenant_passes_every_step_and_is_stored(simulator, tenant_a):
    sim_tenant = connect(simulator, tenant_a)
    result = connection.test_connection(tenant_a)
    assert outcome(result) == [(key, True) for key in STEP_KEYS]
    assert result.ok
    tenant_a.refresh_from_db()
    assert tenant_a.last_test_ok is True
    assert tenant_a.last_test_at is not None
    assert "✓ Graph token" in tenant_a.last_test_message
    assert str(tenant_a.entra_tenant_id) == sim_tenant.id
    assert sim_tenant.id in result.steps[1].message
    assert "not been provisioned" in result.steps[-1].message


def test_provisioned_state_is_reported(simulator, tenant_a):
    connect(simulator, tenant_a)
    from compliance.intune.client import IntuneClient

    IntuneClient.from_tenant(tenant_a).provision("https://p.example/e", "https://p.example/r")
    assert connection.test_connection(tenant_a).steps[-1].message.startswith("Intune has the partner integration "
                                                                              "provisioned")


@pytest.mark.parametrize(
    "breakage, failing_step, code",
    [
        ("no_secret", "settings", "no_secret"),
        ("unknown_tenant", "tenant", "tenant_not_found"),
        ("wrong_secret", "graph_token", "invalid_secret"),
        ("expired_in_entra", "graph_token", "secret_expired"),
        ("no_licence", "intune_token", "no_intune_licence"),
        ("no_application_read_all", "discovery", "discovery_denied"),
        ("no_partner_role", "provisioning", "provisioning_refused"),
    ],
)
def test_broken_tenant_fails_at_the_right_step_with_advice(simulator, tenant_a, breakage, failing_step, code):
    ms = microsoft(simulator)
    if breakage == "unknown_tenant":
        ClientSecretFactory(tenant=tenant_a, value=SECRET)
    elif breakage == "wrong_secret":
        ClientSecretFactory(tenant=tenant_a, value=SECRET)
        ms.register(tenant_a.entra_tenant, tenant_a.client_id, ["the-real-secret-value"])
    elif breakage == "expired_in_entra":
        connect(simulator, tenant_a)
        simulator.set_faults(expire_secrets=[tenant_a.entra_tenant])
    elif breakage == "no_licence":
        connect(simulator, tenant_a, intune_licensed=False)
    elif breakage == "no_application_read_all":
        connect(simulator, tenant_a, graph_roles=["Device.ReadWrite.All"])
    elif breakage == "no_partner_role":
        connect(simulator, tenant_a, intune_roles=[])
    result = connection.test_connection(tenant_a)
    index = STEP_KEYS.index(failing_step)
    assert outcome(result) == (
        [(k, True) for k in STEP_KEYS[:index]] + [(failing_step, False)] + [(k, None) for k in STEP_KEYS[index + 1:]]
    )
    failed = result.failed_step
    assert failed.code == code and failed.advice
    tenant_a.refresh_from_db()
    assert tenant_a.last_test_ok is False
    assert failed.advice in tenant_a.last_test_message
    assert SECRET not in tenant_a.last_test_message and SECRET not in failed.detail


def test_expired_secret_after_a_green_test_shows_the_expired_advice(simulator, tenant_a):
    connect(simulator, tenant_a)
    assert connection.test_connection(tenant_a).ok
    microsoft(simulator).expire_secret(tenant_a.entra_tenant)  # msal still caches a valid token: the test must not
    result = connection.test_connection(tenant_a)
    assert result.failed_step.key == "graph_token" and result.failed_step.code == "secret_expired"
    assert "Add a new client secret" in result.failed_step.advice


def test_admin_consent_url_per_cloud(tenant_a, settings):
    from urllib.parse import parse_qs, urlsplit

    settings.PORTAL_CLOUD_OVERRIDES = {}
    settings.PORTAL_BASE_URL = "https://portal.example"
    url = connection.admin_consent_url(tenant_a)
    parts = urlsplit(url)
    assert "%s://%s%s" % parts[:3] == "https://login.microsoftonline.com/alpha.onmicrosoft.com/adminconsent"
    query = parse_qs(parts.query)
    assert query["client_id"] == [tenant_a.client_id]  # the tenant's own app: use_own_app in the factory
    assert query["redirect_uri"] == ["https://portal.example/consent/callback/"]
    assert query["state"][0]
    tenant_a.cloud = "usgov"
    assert connection.admin_consent_url(tenant_a).startswith("https://login.microsoftonline.us/alpha.onmicrosoft.com/")
    tenant_a.cloud = "china"
    assert connection.admin_consent_url(tenant_a).startswith("https://login.chinacloudapi.cn/")


def test_admin_consent_in_the_simulator_grants_consent(simulator, tenant_a):
    import requests

    sim_tenant = connect(simulator, tenant_a, consent=False)
    assert connection.test_connection(tenant_a).failed_step.code == "consent_missing"
    response = requests.get(connection.admin_consent_url(tenant_a), verify=str(simulator.ca_path), timeout=5,
                            allow_redirects=False)
    assert response.status_code == 302
    assert "tenant=%s&admin_consent=True&state=" % sim_tenant.id in response.headers["Location"]
    assert connection.test_connection(tenant_a).ok


# -- manage.py test_connection ---------------------------------------------------------------------


def test_command_prints_the_same_steps(simulator, tenant_a):
    connect(simulator, tenant_a)
    out = StringIO()
    call_command("test_connection", tenant_a.slug, stdout=out)
    text = out.getvalue()
    for _key, name in connection.STEPS:
        assert "✓ %s" % name in text
    assert "Connection OK" in text


def test_command_fails_with_the_advice(simulator, tenant_a):
    ClientSecretFactory(tenant=tenant_a, value=SECRET)
    microsoft(simulator).register(tenant_a.entra_tenant, tenant_a.client_id, ["the-real-secret-value"])
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("test_connection", tenant_a.slug, stdout=out)
    assert "✗ Graph token" in out.getvalue()
    assert "not its Secret ID" in out.getvalue()
    assert SECRET not in out.getvalue()


def test_command_unknown_slug(db):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("test_connection", "nope")


# -- the admin ---------------------------------------------------------------------------------------


def change_data(tenant, **overrides):
    data = {
        "name": tenant.name, "slug": tenant.slug, "is_active": "on", "cloud": tenant.cloud,
        "entra_tenant": tenant.entra_tenant, "client_id": tenant.client_id, "reporting_mode": tenant.reporting_mode,
        **({"use_own_app": "on"} if tenant.use_own_app else {}),
        "partner_policy_group_ids": "[]", "landing_page": tenant.landing_page, "unresponsive_after_hours": "24",
        "compliance_validity_days": "30", "account_not_onboarded_days": "3", "jamf_api_version": "auto",
        "client_secrets-TOTAL_FORMS": "0", "client_secrets-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_saving_changed_connection_settings_runs_the_test(simulator, client, admin_a, tenant_a):
    connect(simulator, tenant_a)
    other_app = str(uuid.uuid4())
    client.force_login(admin_a)
    url = reverse("admin:portal_tenant_change", args=[tenant_a.pk])
    response = client.post(url, change_data(tenant_a, client_id=other_app), follow=True)
    assert response.status_code == 200, response.content[:2000]
    text = response.content.decode()
    assert "Connection test failed at" in text and "The application was not found in this tenant." in text
    tenant_a.refresh_from_db()
    assert tenant_a.client_id == other_app and tenant_a.last_test_ok is False
    response = client.post(url, change_data(tenant_a, client_id="11111111-2222-4333-8444-555555555555"), follow=True)
    assert "Connection test passed" in response.content.decode()


def test_saving_a_new_secret_runs_the_test(simulator, client, admin_a, tenant_a):
    microsoft(simulator).register(tenant_a.entra_tenant, tenant_a.client_id, ["brand-new-secret-value"])
    client.force_login(admin_a)
    expires = (timezone.now() + datetime.timedelta(days=90)).strftime("%Y-%m-%d")
    data = change_data(
        tenant_a,
        **{
            "client_secrets-TOTAL_FORMS": "1", "client_secrets-0-value": "brand-new-secret-value",
            "client_secrets-0-description": "rotation", "client_secrets-0-expires_at_0": expires,
            "client_secrets-0-expires_at_1": "12:00:00",
        },
    )
    response = client.post(reverse("admin:portal_tenant_change", args=[tenant_a.pk]), data, follow=True)
    assert "Connection test passed" in response.content.decode()
    assert "brand-new-secret-value" not in response.content.decode()


def test_unchanged_save_does_not_call_microsoft(simulator, client, admin_a, tenant_a):
    connect(simulator, tenant_a)
    client.force_login(admin_a)
    client.post(reverse("admin:portal_tenant_change", args=[tenant_a.pk]), change_data(tenant_a, name="Alpha 2"))
    assert simulator.counts["route:entra_token"] == 0


def test_change_page_has_the_consent_and_test_buttons(simulator, client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk]))
    text = response.content.decode()
    assert "Grant admin consent" in text
    assert "/adminconsent?client_id=%s" % tenant_a.client_id in text
    assert reverse("admin:portal_tenant_test_connection", args=[tenant_a.pk]) in text


def test_test_connection_button_runs_the_steps(simulator, client, operator_a, tenant_a):
    connect(simulator, tenant_a)
    client.force_login(operator_a)
    url = reverse("admin:portal_tenant_test_connection", args=[tenant_a.pk])
    assert client.get(url).status_code == 200
    response = client.post(url)
    text = response.content.decode()
    assert response.status_code == 200
    assert text.count("✓") >= len(STEP_KEYS) and "Connected" in text


def test_test_connection_is_scoped_and_needs_operator(simulator, client, viewer_a, admin_b, tenant_a):
    url = reverse("admin:portal_tenant_test_connection", args=[tenant_a.pk])
    client.force_login(admin_b)
    assert client.post(url).status_code == 404  # another tenant's admin does not see it
    client.force_login(viewer_a)
    assert client.post(url).status_code == 403
    assert simulator.counts["route:entra_token"] == 0


def test_admin_action_tests_the_selected_tenants(simulator, client, msp_user, tenant_a, tenant_b):
    connect(simulator, tenant_a)
    ClientSecretFactory(tenant=tenant_b, value="bravo-secret-value")  # Entra does not know bravo
    client.force_login(msp_user)
    response = client.post(
        reverse("admin:portal_tenant_changelist"),
        {"action": "test_connection_action", "_selected_action": [tenant_a.pk, tenant_b.pk]},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Alpha" in text and "Bravo" in text
    assert "Entra ID does not know this tenant." in text
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert tenant_a.last_test_ok is True and tenant_b.last_test_ok is False


def test_bad_connection_settings_are_field_errors_and_call_nothing(simulator, client, admin_a, tenant_a):
    connect(simulator, tenant_a)
    client.force_login(admin_a)
    response = client.post(
        reverse("admin:portal_tenant_change", args=[tenant_a.pk]),
        change_data(tenant_a, client_id="not-a-guid", entra_tenant="not a domain"),
    )
    assert response.status_code == 200  # the form again, with errors on the fields
    errors = response.context["adminform"].form.errors
    assert "client_id" in errors and "entra_tenant" in errors
    assert simulator.counts["route:entra_token"] == 0 and simulator.counts["route:entra_openid"] == 0
