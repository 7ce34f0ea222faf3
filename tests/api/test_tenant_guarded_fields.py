"""Settings a tenant admin must not weaken or break: short webhook secrets, the slug, the active flag."""

import pytest
from django.urls import reverse

from devices.webhooks import generate_webhook_secret
from portal.models import Tenant
from tests.admin_forms import change_form_data


@pytest.mark.parametrize("secret", ["a", "x" * 31])
def test_a_short_webhook_secret_is_refused(api, admin_a, tenant_a, secret):
    response = api.as_user(admin_a).patch("/api/v1/tenants/alpha/", {"webhook_secret": secret}, format="json")
    assert response.status_code == 400 and "webhook_secret" in response.json()
    assert Tenant.objects.get(pk=tenant_a.pk).webhook_secret == ""


def test_a_long_or_generated_webhook_secret_is_taken_and_blank_clears(api, admin_a, tenant_a):
    client = api.as_user(admin_a)
    for secret in ("y" * 32, generate_webhook_secret()):
        response = client.patch("/api/v1/tenants/alpha/", {"webhook_secret": secret}, format="json")
        assert response.status_code == 200, response.content
        assert Tenant.objects.get(pk=tenant_a.pk).webhook_secret == secret
    assert client.patch("/api/v1/tenants/alpha/", {"webhook_secret": ""}, format="json").status_code == 200
    assert Tenant.objects.get(pk=tenant_a.pk).webhook_secret == ""


@pytest.mark.parametrize("field,value", [("slug", "renamed"), ("is_active", False)])
def test_tenant_admin_cannot_change_slug_or_active_flag(api, admin_a, msp_user, tenant_a, field, value):
    client = api.as_user(admin_a)
    response = client.patch("/api/v1/tenants/alpha/", {field: value}, format="json")
    assert response.status_code == 400 and field in response.json()
    tenant_a.refresh_from_db()
    assert (tenant_a.slug, tenant_a.is_active) == ("alpha", True)
    # Sending the current value back (a full PUT of what GET gave) is fine.
    body = client.get("/api/v1/tenants/alpha/").json()
    assert client.put("/api/v1/tenants/alpha/", body, format="json").status_code == 200
    # MSP staff may.
    response = api.as_user(msp_user).patch("/api/v1/tenants/alpha/", {field: value}, format="json")
    assert response.status_code == 200, response.content
    tenant_a.refresh_from_db()
    assert getattr(tenant_a, field) == value


def test_admin_page_shows_slug_and_active_flag_read_only_to_tenant_admins(client, admin_a, msp_user, tenant_a):
    url = reverse("admin:portal_tenant_change", args=[tenant_a.pk])
    client.force_login(admin_a)
    page = client.get(url)
    form = page.context["adminform"].form
    assert "slug" not in form.fields and "is_active" not in form.fields
    data = change_form_data(page, slug="renamed", support_contact="help@alpha.example")
    data.pop("is_active", None)  # an unticked box: what a forged post would send to deactivate
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert (tenant_a.slug, tenant_a.is_active, tenant_a.support_contact) == ("alpha", True, "help@alpha.example")

    client.force_login(msp_user)
    page = client.get(url)
    assert "slug" in page.context["adminform"].form.fields
    data = change_form_data(page, slug="alpha-renamed")
    data.pop("is_active", None)
    assert client.post(url, data).status_code == 302
    tenant_a.refresh_from_db()
    assert (tenant_a.slug, tenant_a.is_active) == ("alpha-renamed", False)
