"""A list shows only rows whose detail the caller may read (issue 12, item 2), and tenant secret metadata is
for the tenant's admins."""

from django.urls import reverse

from portal import tenancy
from tests.factories import ClientSecretFactory, MembershipFactory, TenantFactory

SECRET_METADATA = {"has_secret", "secret_expires_at", "client_secrets", "has_jamf_client_secret",
                   "has_webhook_secret"}


def test_client_secret_list_is_scoped_with_the_detail_role(api, viewer_a, tenant_a):
    charlie = TenantFactory(name="Charlie", slug="charlie")
    MembershipFactory(user=viewer_a, tenant=charlie, role=tenancy.ADMIN)
    secret_a = ClientSecretFactory(tenant=tenant_a)
    secret_c = ClientSecretFactory(tenant=charlie)
    client = api.as_user(viewer_a)
    assert client.get("/api/v1/client-secrets/%d/" % secret_a.pk).status_code == 403
    assert client.get("/api/v1/client-secrets/%d/" % secret_c.pk).status_code == 200
    response = client.get("/api/v1/client-secrets/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [secret_c.pk]
    assert {row["id"] for row in client.get("/api/v1/client-secrets/?tenant__slug=alpha").json()["results"]} == set()


def test_tenant_secret_metadata_is_for_admins(api, viewer_a, operator_a, admin_a, msp_user, tenant_a, tenant_b):
    ClientSecretFactory(tenant=tenant_a)
    MembershipFactory(user=viewer_a, tenant=tenant_b, role=tenancy.ADMIN)
    for user in (viewer_a, operator_a):
        body = api.as_user(user).get("/api/v1/tenants/alpha/").json()
        assert body["slug"] == "alpha" and not SECRET_METADATA & set(body), user
    for user in (admin_a, msp_user):
        body = api.as_user(user).get("/api/v1/tenants/alpha/").json()
        assert set(body) >= SECRET_METADATA and len(body["client_secrets"]) == 1
    # In a list, per row: viewer of Alpha, admin of Bravo.
    rows = {row["slug"]: row for row in api.as_user(viewer_a).get("/api/v1/tenants/").json()["results"]}
    assert not SECRET_METADATA & set(rows["alpha"]) and set(rows["bravo"]) >= SECRET_METADATA


def test_admin_tenant_page_shows_secrets_to_admins_only(client, viewer_a, admin_a, tenant_a):
    ClientSecretFactory(tenant=tenant_a, description="rotation-2026")
    url = reverse("admin:portal_tenant_change", args=[tenant_a.pk])
    client.force_login(viewer_a)
    assert "rotation-2026" not in client.get(url).content.decode()
    client.force_login(admin_a)
    assert "rotation-2026" in client.get(url).content.decode()
