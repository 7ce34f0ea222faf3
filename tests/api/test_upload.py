"""The inventory upload (issue 6 item 4): stored first, answered per record, never a 500."""

import copy
import json

import pytest

from devices.jamf.samples import make_record
from devices.models import Computer, InventoryEvent

URL = "/api/v1/tenants/alpha/inventory/"


def post(client, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data=data, content_type=content_type)


def test_one_record_a_list_and_a_page(api, operator_a, tenant_a):
    client = api.as_user(operator_a)
    one = make_record(1, "alpha")
    response = post(client, one)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"]["created"] == 1
    assert body["results"] == [{"index": 0, "jamf_id": one["id"], "outcome": "created", "reason": ""}]
    event = InventoryEvent.objects.get(pk=body["event"])
    assert event.source == "upload" and event.status == "processed" and json.loads(event.raw_body) == one
    assert event.computer_id == Computer.objects.get(tenant=tenant_a, jamf_id=one["id"]).pk

    newer = copy.deepcopy(one)
    newer["general"]["name"] = "Renamed"
    newer["general"]["reportDate"] = "2099-01-01T00:00:00.000Z"
    older = copy.deepcopy(one)
    older["general"]["reportDate"] = "2000-01-01T00:00:00.000Z"
    older["general"]["name"] = "Older"
    bad = {"id": "77", "general": "not an object"}
    response = post(client, [newer, make_record(2, "alpha"), bad])
    outcomes = [(r["index"], r["outcome"]) for r in response.json()["results"]]
    assert outcomes == [(0, "updated"), (1, "created"), (2, "rejected")]
    assert response.json()["results"][2]["reason"]

    response = post(client, {"totalCount": 2, "results": [newer, older]})
    assert [r["outcome"] for r in response.json()["results"]] == ["unchanged", "stale"]
    assert Computer.objects.get(tenant=tenant_a, jamf_id=one["id"]).name == "Renamed"


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        ("{truncated", "application/json", 400),
        ("42", "application/json", 400),
        ("", "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        ("{}", "text/plain", 415),
    ],
)
def test_unreadable_bodies_are_4xx_and_stored(api, operator_a, tenant_a, body, content_type, status):
    response = post(api.as_user(operator_a), body, content_type)
    assert response.status_code == status, response.content
    if status == 400:
        event = InventoryEvent.objects.get(tenant=tenant_a)
        assert event.status == "rejected" and event.error
    else:
        assert not InventoryEvent.objects.exists()
    assert not Computer.objects.exists()


def test_too_large_is_413(api, operator_a, tenant_a, settings):
    settings.API_INVENTORY_MAX_BYTES = 1000
    response = post(api.as_user(operator_a), [make_record(n, "alpha") for n in range(3)])
    assert response.status_code == 413
    assert not InventoryEvent.objects.exists()


def test_only_writers_of_that_tenant_may_upload(api, viewer_a, admin_b, tenant_a):
    assert post(api.as_user(viewer_a), make_record(1, "alpha")).status_code == 403
    assert post(api.as_user(admin_b), make_record(1, "alpha")).status_code == 404
    assert post(api, make_record(1, "alpha")).status_code == 401
    assert not InventoryEvent.objects.exists() and not Computer.objects.exists()
