"""Format suffixes and the browsable API never answer 500 (issue 12, item 3). The matrix covers every route ×
suffix × role; these are the reported requests, and the browsable API asked for by Accept header."""

import json

import pytest

from devices.jamf.samples import make_record
from tests.factories import ComputerFactory


@pytest.mark.parametrize("method,path,expected", [
    ("post", "/api/v1/computers/{pk}/retire.json", 200),
    ("get", "/api/v1/computers/{pk}/history.json", 200),
    ("get", "/api/v1/computers/{pk}/history.api", 200),
    ("get", "/api/v1/tenants/alpha/consent-url.json", 200),
    ("get", "/api/v1/tenants/alpha/consent-url.api", 200),
    ("post", "/api/v1/tenants/alpha/inventory.json", 200),
    ("get", "/api/v1/tenants/alpha.json", 200),
])
def test_reported_suffix_routes(api, admin_a, tenant_a, method, path, expected):
    computer = ComputerFactory(tenant=tenant_a)
    client = api.as_user(admin_a)
    url = path.format(pk=computer.pk)
    if method == "post":
        response = client.post(url, json.dumps(make_record(900, "alpha")), content_type="application/json")
    else:
        response = client.get(url)
    assert response.status_code == expected, response.content[:300]


def test_inventory_upload_with_the_browsable_api(api, operator_a, tenant_a):
    client = api.as_user(operator_a)
    response = client.get("/api/v1/tenants/alpha/inventory/", HTTP_ACCEPT="text/html")
    assert response.status_code == 405 and b"<html" in response.content
    response = client.post("/api/v1/tenants/alpha/inventory/", json.dumps(make_record(901, "alpha")),
                           content_type="application/json", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<html" in response.content
    assert tenant_a.computers.filter(jamf_id="901").exists()
