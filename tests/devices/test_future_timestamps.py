"""Check-in and report dates ahead of their receipt are stored as the time of receipt (issue 12, item 6).

The raw value stays in the stored event, and the event's processing note says what was done.
"""

import datetime
import json

import pytest
from django.utils import timezone

from devices import tasks
from devices.jamf.samples import make_record
from devices.models import Computer, InventoryEvent
from tests.api.conftest import token_client
from tests.devices.test_webhooks import client, event_for, hook_tenant, post  # noqa: F401 - fixtures
from tests.factories import ComputerFactory

pytestmark = pytest.mark.django_db
TEN_YEARS = datetime.timedelta(days=3650)


def _near(value, when, slack=datetime.timedelta(seconds=5)):
    return abs(value - when) <= slack


@pytest.mark.parametrize("path", ["batch", "single"])
def test_a_check_in_ten_years_ahead_is_stored_as_the_time_of_receipt(client, hook_tenant, path):  # noqa: F811
    mac = ComputerFactory(tenant=hook_tenant, jamf_id="7", last_check_in=timezone.now() - datetime.timedelta(hours=1))
    future = timezone.now() + TEN_YEARS
    post(client, "alpha", event_for(7, "ComputerCheckIn", when=future))
    event = InventoryEvent.objects.get(tenant=hook_tenant)
    if path == "batch":
        tasks.drain_events(hook_tenant.pk)
    else:
        tasks.apply_event(event)
    event.refresh_from_db()
    mac.refresh_from_db()
    assert event.status == "processed"
    assert mac.last_check_in == event.received_at
    assert abs(event.event_timestamp - future) < datetime.timedelta(seconds=1)  # the raw value is kept
    assert str(future.year) in event.raw_body or json.loads(event.raw_body)["webhook"]["eventTimestamp"]
    assert "ahead of the time of receipt" in event.error and str(future.year) in event.error

    # A real check-in afterwards still moves it.
    later = timezone.now() + datetime.timedelta(seconds=1)
    post(client, "alpha", event_for(7, "ComputerCheckIn", when=later))
    tasks.drain_events(hook_tenant.pk)
    mac.refresh_from_db()
    assert _near(mac.last_check_in, later, datetime.timedelta(milliseconds=1))


def test_a_small_clock_skew_is_kept(client, hook_tenant):  # noqa: F811
    mac = ComputerFactory(tenant=hook_tenant, jamf_id="8", last_check_in=None)
    ahead = timezone.now() + datetime.timedelta(minutes=2)
    post(client, "alpha", event_for(8, "ComputerCheckIn", when=ahead))
    tasks.drain_events(hook_tenant.pk)
    mac.refresh_from_db()
    assert _near(mac.last_check_in, ahead, datetime.timedelta(milliseconds=1))
    assert InventoryEvent.objects.get(tenant=hook_tenant).error == ""


def test_an_inventory_summary_ahead_is_clamped(client, hook_tenant):  # noqa: F811
    future = timezone.now() + TEN_YEARS
    post(client, "alpha", event_for(9, "ComputerAdded", when=future))
    tasks.drain_events(hook_tenant.pk)
    event = InventoryEvent.objects.get(tenant=hook_tenant)
    mac = Computer.objects.get(tenant=hook_tenant, jamf_id="9")
    assert mac.last_check_in == event.received_at and mac.last_inventory_update == event.received_at
    assert "ahead of the time of receipt" in event.error


def test_an_upload_with_report_dates_ahead_is_clamped_and_noted(hook_tenant, admin_a):  # noqa: F811
    future = timezone.now() + TEN_YEARS
    record = make_record(900, "alpha", now=future)
    response = token_client(admin_a).post(
        "/api/v1/tenants/alpha/inventory/", json.dumps(record), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    event = InventoryEvent.objects.get(pk=body["event"])
    mac = Computer.objects.get(tenant=hook_tenant, jamf_id="900")
    assert mac.last_inventory_update == event.received_at and mac.last_check_in == event.received_at
    assert any("general.reportDate" in note for note in body["notes"])
    assert any("general.lastContactTime" in note for note in body["notes"])
    assert "general.reportDate" in event.error and "ahead of the time of receipt" in event.error
    assert record["general"]["reportDate"] in event.raw_body  # the raw value is kept
    # The same record again is unchanged (the clamped dates do not make it look new).
    response = token_client(admin_a).post(
        "/api/v1/tenants/alpha/inventory/", json.dumps(record), content_type="application/json"
    )
    assert response.json()["results"][0]["outcome"] == "unchanged"

    # The next real report is not "stale" against the clamped date.
    newer = make_record(900, "alpha")
    newer["general"]["reportDate"] = (timezone.now() + datetime.timedelta(seconds=30)).isoformat()
    response = token_client(admin_a).post(
        "/api/v1/tenants/alpha/inventory/", json.dumps(newer), content_type="application/json"
    )
    assert response.json()["results"][0]["outcome"] in ("updated", "unchanged")
