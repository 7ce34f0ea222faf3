"""The Self Service registration link: real jamfselfservice:// links save (admin and API); others are refused."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal.models import Tenant, validate_self_service_url
from tests.admin_forms import change_form_data
from tests.api.conftest import token_client

REAL_LINKS = [
    "jamfselfservice://content?entity=policy&id=12&action=view",
    "jamfselfservice://content?entity=policy&id=7&action=execute",
    "jamfselfservice://content?entity=configprofile&id=3&action=view",
    "jamfselfservice://content?entity=policy&id=12",
    "https://selfservice.example.com/policy/12",
]
REFUSED = [
    "jamfselfservice://evil.example/content?entity=policy&id=1",
    "jamfselfservice://content/../x?entity=policy&id=1",
    "jamfselfservice://content?entity=policy&id=abc&action=view",
    "jamfselfservice://content?id=1",
    "jamfselfservice://content?entity=policy&id=1#frag",
    "jamfselfservice://content?entity=<script>&id=1",
    "jamfselfservice://user@content?entity=policy&id=1",
    "jamfselfservice://content:80?entity=policy&id=1",
    "jamfselfservice:content?entity=policy&id=1",
    "jamfselfservice://content?entity=policy&id=1&id=2",
    "http://selfservice.example.com/",
    "javascript:alert(1)",
    "selfservice://content?entity=policy&id=1",
]


@pytest.mark.parametrize("link", REAL_LINKS)
def test_real_links_are_accepted(link):
    validate_self_service_url(link)


@pytest.mark.parametrize("link", REFUSED)
def test_other_links_are_refused(link):
    with pytest.raises(ValidationError):
        validate_self_service_url(link)


def test_a_demo_tenant_change_form_saves(client, msp_user, tenant_a):
    tenant_a.self_service_registration_url = REAL_LINKS[0]
    tenant_a.save()
    client.force_login(msp_user)
    url = reverse("admin:portal_tenant_change", args=[tenant_a.pk])
    page = client.get(url)
    data = change_form_data(page, support_contact="help@alpha.example")
    assert data["self_service_registration_url"] == REAL_LINKS[0]
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert tenant_a.support_contact == "help@alpha.example"
    assert tenant_a.self_service_registration_url == REAL_LINKS[0]

    response = client.post(url, {**data, "self_service_registration_url": REFUSED[0]})
    assert response.status_code == 200
    assert "self_service_registration_url" in response.context["adminform"].form.errors


def test_full_put_of_what_get_returns(admin_a, tenant_a):
    tenant_a.self_service_registration_url = REAL_LINKS[0]
    tenant_a.save()
    client = token_client(admin_a)
    body = client.get("/api/v1/tenants/alpha/").json()
    response = client.put("/api/v1/tenants/alpha/", body, format="json")
    assert response.status_code == 200, response.content
    response = client.patch("/api/v1/tenants/alpha/", {"self_service_registration_url": REFUSED[0]}, format="json")
    assert response.status_code == 400 and "self_service_registration_url" in response.json()
    assert Tenant.objects.get(pk=tenant_a.pk).self_service_registration_url == REAL_LINKS[0]
