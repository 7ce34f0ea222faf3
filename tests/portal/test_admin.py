import datetime

import pytest
from django.utils import timezone

from portal.models import ClientSecret, Tenant
from tests.factories import ClientSecretFactory, ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db


def test_customer_admin_sees_only_their_tenants_rows(client, tenant_a, tenant_b, admin_a):
    ca = ComputerFactory(tenant=tenant_a, name="Alpha Mac")
    cb = ComputerFactory(tenant=tenant_b, name="Bravo Mac")
    UserAccountFactory(computer=ca)
    client.force_login(admin_a)
    page = client.get("/admin/devices/computer/").content.decode()
    assert "Alpha Mac" in page and "Bravo Mac" not in page
    assert client.get("/admin/devices/computer/%d/change/" % ca.pk).status_code == 200
    assert client.get("/admin/devices/computer/%d/change/" % cb.pk).status_code == 302  # "doesn't exist" redirect
    tenants = client.get("/admin/portal/tenant/").content.decode()
    assert "Alpha" in tenants and "Bravo" not in tenants
    assert client.get("/admin/portal/tenant/%d/change/" % tenant_b.pk).status_code == 302
    # The tenant filter offers only their tenant.
    assert "Bravo" not in client.get("/admin/devices/computer/").content.decode()


def test_customer_admin_cannot_choose_another_tenant_in_a_drop_down(client, tenant_a, tenant_b, admin_a):
    client.force_login(admin_a)
    page = client.get("/admin/portal/membership/add/").content.decode()
    assert 'value="%d"' % tenant_a.pk in page
    assert 'value="%d"' % tenant_b.pk not in page
    response = client.post("/admin/portal/membership/add/", {"user": admin_a.pk, "tenant": tenant_b.pk,
                                                             "role": "admin"})
    assert response.status_code == 200  # the form is shown again with an error
    assert "Select a valid choice" in response.content.decode()


def test_viewer_cannot_change_tenant_and_nobody_edits_inventory(client, tenant_a, viewer_a, msp_user):
    computer = ComputerFactory(tenant=tenant_a)
    client.force_login(viewer_a)
    response = client.post("/admin/portal/tenant/%d/change/" % tenant_a.pk, {"name": "Hacked"})
    assert response.status_code == 403
    client.force_login(msp_user)
    page = client.get("/admin/devices/computer/%d/change/" % computer.pk).content.decode()
    assert 'name="serial_number"' not in page  # read-only


def tenant_post(tenant, **overrides):
    data = {
        "name": tenant.name, "slug": tenant.slug, "is_active": "on", "cloud": "global",
        "entra_tenant": tenant.entra_tenant, "client_id": tenant.client_id, "reporting_mode": "partner_compliance",
        "partner_policy_group_ids": "[]", "landing_page": "registration", "unresponsive_after_hours": 24,
        "compliance_validity_days": 30, "account_not_onboarded_days": 3, "jamf_api_version": "auto",
        "jamf_client_secret": "",
        "client_secrets-TOTAL_FORMS": 0, "client_secrets-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


def test_invalid_tenant_settings_get_field_errors(client, tenant_a, msp_user):
    client.force_login(msp_user)
    response = client.post("/admin/portal/tenant/%d/change/" % tenant_a.pk, tenant_post(
        tenant_a, client_id="not-a-guid", jamf_url="http://jamf.example.com", entra_tenant="bad tenant!",
        compliance_validity_days=121,
    ))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"client_id", "jamf_url", "entra_tenant", "compliance_validity_days"}
    tenant_a.refresh_from_db()
    assert tenant_a.client_id == "11111111-2222-4333-8444-555555555555"


def test_secrets_are_write_only_in_the_admin(client, tenant_a, msp_user):
    expires = timezone.now() + datetime.timedelta(days=9)
    ClientSecretFactory(tenant=tenant_a, value="Top~Secret~Value", expires_at=expires)
    tenant_a.jamf_client_secret = "jamf-secret-xyz"
    tenant_a.save()
    client.force_login(msp_user)
    page = client.get("/admin/portal/tenant/%d/change/" % tenant_a.pk).content.decode()
    assert "Top~Secret~Value" not in page and "jamf-secret-xyz" not in page
    assert "set, expires on" in page
    # Saving with the secret fields blank keeps them.
    secret = ClientSecret.objects.get()
    data = tenant_post(tenant_a, **{
        "client_secrets-TOTAL_FORMS": 1, "client_secrets-INITIAL_FORMS": 1, "client_secrets-0-id": secret.pk,
        "client_secrets-0-tenant": tenant_a.pk, "client_secrets-0-value": "", "client_secrets-0-description": "x",
        "client_secrets-0-expires_at_0": "2030-01-01", "client_secrets-0-expires_at_1": "00:00:00",
    })
    response = client.post("/admin/portal/tenant/%d/change/" % tenant_a.pk, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Tenant.objects.get().jamf_client_secret == "jamf-secret-xyz"
    assert ClientSecret.objects.get().value == "Top~Secret~Value"
