"""Tenants and client secrets: write-only secrets, validation errors that name the field, MSP-only create."""

import datetime

import pytest
from django.utils import timezone

from portal.models import ClientSecret, Tenant
from tests.factories import ClientSecretFactory


def test_secrets_are_write_only(api, admin_a, tenant_a):
    ClientSecretFactory(tenant=tenant_a, value="the-entra-secret~x")
    client = api.as_user(admin_a)
    response = client.patch("/api/v1/tenants/alpha/", {"jamf_client_secret": "jamf-s3cret"}, format="json")
    assert response.status_code == 200, response.content
    body = client.get("/api/v1/tenants/alpha/").json()
    text = str(body)
    assert "jamf-s3cret" not in text and "the-entra-secret~x" not in text
    assert "jamf_client_secret" not in body and body["has_jamf_client_secret"] is True
    assert body["has_secret"] is True and body["secret_expires_at"]
    assert body["client_secrets"][0]["has_secret"] is True and "value" not in body["client_secrets"][0]
    tenant_a.refresh_from_db()
    assert tenant_a.jamf_client_secret == "jamf-s3cret"
    # Leaving it out keeps it; an empty string clears it.
    client.patch("/api/v1/tenants/alpha/", {"support_contact": "x"}, format="json")
    tenant_a.refresh_from_db()
    assert tenant_a.jamf_client_secret == "jamf-s3cret"
    client.patch("/api/v1/tenants/alpha/", {"jamf_client_secret": ""}, format="json")
    tenant_a.refresh_from_db()
    assert tenant_a.jamf_client_secret == ""


def test_expired_secret_is_not_has_secret(api, admin_a, tenant_a):
    ClientSecretFactory(tenant=tenant_a, expires_at=timezone.now() - datetime.timedelta(days=1))
    body = api.as_user(admin_a).get("/api/v1/tenants/alpha/").json()
    assert body["has_secret"] is False and body["secret_expires_at"] is None


def test_validation_errors_name_the_field(api, admin_a, tenant_a):
    client = api.as_user(admin_a)
    response = client.patch("/api/v1/tenants/alpha/", {"compliance_validity_days": 500}, format="json")
    assert response.status_code == 400 and "compliance_validity_days" in response.json()
    response = client.patch("/api/v1/tenants/alpha/", {"landing_page": "custom"}, format="json")
    assert response.status_code == 400 and "landing_custom_url" in response.json()
    response = client.patch("/api/v1/tenants/alpha/", {"landing_custom_url": "http://insecure.example"}, format="json")
    assert response.status_code == 400 and "landing_custom_url" in response.json()
    response = client.patch("/api/v1/tenants/alpha/", {"partner_policy_group_ids": ["nope"]}, format="json")
    assert response.status_code == 400 and "partner_policy_group_ids" in response.json()
    response = client.patch("/api/v1/tenants/alpha/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_client_secret_create_names_only_visible_tenants(api, admin_a, admin_b, tenant_a, tenant_b):
    future = (timezone.now() + datetime.timedelta(days=30)).isoformat()
    client = api.as_user(admin_a)
    response = client.post("/api/v1/client-secrets/", {"tenant": "bravo", "value": "v", "expires_at": future},
                           format="json")
    assert response.status_code == 400 and "tenant" in response.json()
    assert not ClientSecret.objects.filter(tenant=tenant_b).exists()
    response = client.post("/api/v1/client-secrets/", {"tenant": "alpha", "value": "v~1", "expires_at": future},
                           format="json")
    assert response.status_code == 201 and "value" not in response.json()
    assert ClientSecret.objects.get(tenant=tenant_a).value == "v~1"
    secret = ClientSecret.objects.get(tenant=tenant_a)
    response = client.patch("/api/v1/client-secrets/%d/" % secret.pk, {"tenant": "bravo"}, format="json")
    assert response.status_code == 400


def test_admin_of_one_tenant_and_viewer_of_another_cannot_write_the_other(api, admin_a, tenant_b):
    from portal import tenancy
    from tests.factories import MembershipFactory

    MembershipFactory(user=admin_a, tenant=tenant_b, role=tenancy.VIEWER)
    client = api.as_user(admin_a)
    assert client.get("/api/v1/tenants/bravo/").status_code == 200
    assert client.patch("/api/v1/tenants/bravo/", {"name": "x"}, format="json").status_code == 403
    response = client.post("/api/v1/compliance-policies/", {"tenant": "bravo", "name": "p"}, format="json")
    assert response.status_code == 403


def test_only_msp_staff_create_tenants(api, msp_user, admin_a):
    assert api.as_user(admin_a).post("/api/v1/tenants/", {"name": "N", "slug": "n"}, format="json").status_code == 403
    response = api.as_user(msp_user).post("/api/v1/tenants/", {"name": "New", "slug": "new"}, format="json")
    assert response.status_code == 201 and Tenant.objects.filter(slug="new").exists()
    assert api.as_user(msp_user).delete("/api/v1/tenants/new/").status_code == 204


def test_consent_url_is_in_the_tenants_cloud(api, admin_a, tenant_a):
    tenant_a.cloud = "usgov"
    tenant_a.save()
    response = api.as_user(admin_a).get("/api/v1/tenants/alpha/consent-url/")
    assert response.status_code == 200
    url = response.json()["url"]
    assert url.startswith("https://login.microsoftonline.us/alpha.onmicrosoft.com/adminconsent?client_id=")


def test_api_shows_the_app_choice_and_the_onboarding_state_read_only(api, admin_a, tenant_a):
    client = api.as_user(admin_a)
    body = client.get("/api/v1/tenants/alpha/").json()
    assert body["use_own_app"] is True and body["consent_granted_at"] is None and body["intune_partner"] == {}
    response = client.patch("/api/v1/tenants/alpha/", {"use_own_app": False, "consent_granted_by": "me",
                                                       "intune_partner": {"state": "enabled"}}, format="json")
    assert response.status_code == 200, response.content
    tenant_a.refresh_from_db()
    assert tenant_a.use_own_app is False and tenant_a.consent_granted_by == "" and tenant_a.intune_partner == {}


@pytest.mark.parametrize("slug", ["alp\x00ha", "al pha", "alpha/..", "ålpha"])
def test_a_tenant_slug_no_tenant_can_have_is_a_400_naming_the_field(api, admin_a, tenant_a, slug):
    """schemathesis on PostgreSQL: a NUL byte in the tenant slug reached the database and answered 500."""
    response = api.as_user(admin_a).post("/api/v1/compliance-policies/", {"tenant": slug, "name": "p"}, format="json")
    assert response.status_code == 400
    assert "tenant" in response.json()
