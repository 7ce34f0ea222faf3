"""The schema, Swagger UI (assets served by the portal, no CDN) and the browsable API with session login."""

import re

from django.contrib.staticfiles import finders


def test_schema_and_swagger_ui_use_local_assets(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/computers/" in schema.content
    page = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and not any(a.startswith(("http://", "https://", "//")) for a in assets), assets
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts
    for asset in scripts:
        assert finders.find(asset.split("/static/", 1)[1]), asset


def test_browsable_api_with_session_login(client, admin_a):
    login = client.get("/api/auth/login/")
    assert login.status_code == 200
    assert client.get("/api/v1/computers/", HTTP_ACCEPT="text/html").status_code in (401, 403)
    client.force_login(admin_a)
    page = client.get("/api/v1/computers/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Computer List" in page.content
    root = client.get("/api/v1/").json()
    assert {"tenants", "computers", "compliance-policies", "inventory-events", "tokens"} <= set(root)
