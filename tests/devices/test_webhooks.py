"""The Jamf Pro webhook receiver and the processing of what it stores."""

import datetime
import json

import pytest
from django.test import Client
from django_q.models import OrmQ

from devices import tasks
from devices.jamf.samples import make_record
from devices.models import Computer, InventoryEvent
from devices.pull import pull_inventory
from devices.webhooks import MAX_BODY
from simulator.jamf import webhook_body
from tests.devices.jamf_helpers import SECRET, basic, connect, with_secret
from tests.devices.jamf_helpers import client_for as jamf_client_for
from tests.factories import ComputerFactory

URL = "/hooks/jamf/%s/"


@pytest.fixture(autouse=True)
def fresh_clients():
    tasks._clients.clear()  # the worker's per-process Jamf clients: none carried from another test
    yield
    tasks._clients.clear()


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # the receiver is CSRF-exempt


@pytest.fixture
def hook_tenant(tenant_a):
    return with_secret(tenant_a)


def post(client, slug, body, secret=SECRET, content_type="application/json", **headers):
    if secret is not None:
        headers.setdefault("HTTP_X_WEBHOOK_SECRET", secret)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL % slug, data=data, content_type=content_type, **headers)


def event_for(n, event="ComputerInventoryCompleted", tenant_key="alpha", when=None, **kwargs):
    return webhook_body(event, make_record(n, tenant_key), when or datetime.datetime.now(datetime.UTC), **kwargs)


# -- authentication ----------------------------------------------------------------------------


def test_header_secret_stores_and_queues_the_event(client, hook_tenant):
    response = post(client, "alpha", event_for(1))
    assert response.status_code == 202
    event = InventoryEvent.objects.get()
    assert response.json() == {"id": event.pk, "status": "pending"}
    assert event.tenant == hook_tenant and event.source == "webhook"
    assert event.event_type == "ComputerInventoryCompleted" and event.event_timestamp is not None
    assert json.loads(event.raw_body)["webhook"]["webhookEvent"] == "ComputerInventoryCompleted"
    assert OrmQ.objects.count() == 1


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION"])
def test_http_basic_and_bearer_are_accepted(client, hook_tenant, header):
    assert post(client, "alpha", event_for(1), secret=None, HTTP_AUTHORIZATION=basic("jamf", SECRET)).status_code \
        == 202
    assert post(client, "alpha", event_for(1), secret=None, HTTP_AUTHORIZATION="Bearer " + SECRET).status_code \
        == 202


@pytest.mark.parametrize("slug,kwargs", [
    ("alpha", {"secret": "wrong"}),
    ("alpha", {"secret": None}),
    ("alpha", {"secret": None, "HTTP_AUTHORIZATION": basic("other-user", SECRET)}),
    ("alpha", {"secret": None, "HTTP_AUTHORIZATION": basic("jamf", "wrong")}),
    ("alpha", {"secret": None, "HTTP_AUTHORIZATION": "Basic !!!not-base64"}),
    ("nobody", {}),
    ("bravo", {}),  # exists, but has no secret: nothing authenticates
])
def test_unknown_tenant_and_wrong_secret_get_the_same_401_and_nothing_is_stored(client, hook_tenant, tenant_b,
                                                                               slug, kwargs):
    response = post(client, slug, event_for(1), **kwargs)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required: the tenant's webhook secret (header or HTTP Basic)."}
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not InventoryEvent.objects.exists() and not OrmQ.objects.exists()


def test_another_tenants_secret_does_not_open_this_tenant(client, hook_tenant, tenant_b):
    with_secret(tenant_b, "bravo-secret-xyz")
    assert post(client, "alpha", event_for(1), secret="bravo-secret-xyz").status_code == 401


def test_inactive_tenant_is_refused(client, hook_tenant):
    hook_tenant.is_active = False
    hook_tenant.save()
    assert post(client, "alpha", event_for(1)).status_code == 401


def test_only_post(client, hook_tenant):
    response = client.get(URL % "alpha", HTTP_X_WEBHOOK_SECRET=SECRET)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_url_without_the_trailing_slash_works_too(client, hook_tenant):
    response = client.post("/hooks/jamf/alpha", data=json.dumps(event_for(1)), content_type="application/json",
                           HTTP_X_WEBHOOK_SECRET=SECRET)
    assert response.status_code == 202


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body,reason", [
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn"', "not valid JSON"),
    (b"", "empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"event": {}}', "webhook: expected an object"),
    (b'{"webhook": [], "event": {}}', "webhook: expected an object, got a list"),
    (b'{"webhook": {"webhookEvent": 5}}', "webhook.webhookEvent"),
    (b'{"webhook": {"webhookEvent": "NotAJamfEvent"}}', "not a Jamf Pro webhook event"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn"}, "event": [1]}', "event: expected an object"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn"}, "event": {"computer": "x"}}', "event.computer"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn", "eventTimestamp": "soon"}}', "eventTimestamp"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn", "eventTimestamp": 1e300}}', "out of range"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn", "eventTimestamp": 1%s}}' % (b"0" * 400), "out of range"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn", "eventTimestamp": 1e999}}', "not a time"),
    (b'{"webhook": {"webhookEvent": "ComputerCheckIn", "eventTimestamp": NaN}}', "not a JSON value"),
    (b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"jssID": true}}', "event.jssID"),
    (b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"jssID": "12a"}}', "event.jssID"),
    (b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"udid": {"a": 1}}}', "event.udid"),
    (b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"deviceName": "a\\u0000b"}}', "NUL"),
    (b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"deviceName": "a\\ud800b"}}', "surrogate"),
])
def test_malformed_bodies_are_stored_as_rejected_and_answered_400(client, hook_tenant, body, reason):
    response = post(client, "alpha", body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    event = InventoryEvent.objects.get()
    assert event.status == "rejected" and reason in event.error
    assert response.json()["id"] == event.pk
    assert not OrmQ.objects.exists()  # nothing to process


def test_wrong_content_type_is_415_and_stored_as_rejected(client, hook_tenant):
    response = post(client, "alpha", "<xml/>", content_type="application/xml")
    assert response.status_code == 415 and "JSON" in response.json()["error"]
    assert InventoryEvent.objects.get().status == "rejected"


def test_bodies_over_one_megabyte_are_413_and_not_stored(client, hook_tenant):
    big = json.dumps({"webhook": {"webhookEvent": "ComputerCheckIn"}, "event": {"pad": "x" * MAX_BODY}})
    assert post(client, "alpha", big).status_code == 413
    assert not InventoryEvent.objects.exists()


def test_a_body_of_exactly_one_megabyte_is_read(client, hook_tenant):
    head = b'{"webhook": {"webhookEvent": "ComputerCheckIn"}, "event": {"pad": "'
    body = head + b"x" * (MAX_BODY - len(head) - 3) + b'"}}'
    assert len(body) == MAX_BODY
    assert post(client, "alpha", body).status_code == 202


def test_other_jamf_events_are_stored_as_ignored(client, hook_tenant):
    body = {"webhook": {"webhookEvent": "MobileDeviceCheckIn", "eventTimestamp": 1700000000000}, "event": {}}
    response = post(client, "alpha", body)
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert InventoryEvent.objects.get().status == "ignored"
    assert not OrmQ.objects.exists()


def test_a_rejected_body_leaves_what_was_stored_intact(client, hook_tenant):
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="1", name="Kept")
    post(client, "alpha", b'{"webhook": {"webhookEvent": "ComputerAdded"}, "event": {"jssID": 1, "udid": []}}')
    computer.refresh_from_db()
    assert computer.name == "Kept"


# -- processing ----------------------------------------------------------------------------------


def process_all():
    pks = InventoryEvent.objects.filter(source="webhook").order_by("pk").values_list("pk", flat=True)
    return [tasks.process_event(pk) for pk in pks]


@pytest.mark.parametrize("shape", ["nested", "flat"])
@pytest.mark.parametrize("event_type", ["ComputerCheckIn", "ComputerPolicyFinished"])
def test_check_in_moves_last_check_in_forward_only(client, hook_tenant, shape, event_type):
    old = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="7", last_check_in=old, name="Before")
    newer = old + datetime.timedelta(hours=5)
    post(client, "alpha", event_for(7, event_type, when=newer, shape=shape))
    post(client, "alpha", event_for(7, event_type, when=old - datetime.timedelta(days=1), shape=shape))
    assert process_all() == ["processed", "processed"]
    computer.refresh_from_db()
    assert computer.last_check_in == newer
    assert computer.name == "Before"  # a check-in changes nothing else
    first, second = InventoryEvent.objects.order_by("pk")
    assert first.computer == computer and second.error == "A newer check-in is already stored."


def test_timestamp_in_seconds_or_milliseconds(client, hook_tenant):
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="7", last_check_in=None)
    body = event_for(7, "ComputerCheckIn")
    body["webhook"]["eventTimestamp"] = 1767225600  # seconds: 2026-01-01T00:00:00Z
    post(client, "alpha", body)
    process_all()
    computer.refresh_from_db()
    assert computer.last_check_in == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    body["webhook"]["eventTimestamp"] = 1767225600 * 1000 + 3600 * 1000
    post(client, "alpha", body)
    process_all()
    computer.refresh_from_db()
    assert computer.last_check_in == datetime.datetime(2026, 1, 1, 1, tzinfo=datetime.UTC)


def test_check_in_without_a_timestamp_uses_the_receive_time(client, hook_tenant):
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="7", last_check_in=None)
    post(client, "alpha", {"webhook": {"webhookEvent": "ComputerCheckIn"}, "event": {"computer": {"jssID": 7}}})
    process_all()
    computer.refresh_from_db()
    assert computer.last_check_in == InventoryEvent.objects.get().received_at


def test_check_in_for_an_unknown_computer_is_ignored_without_api(client, hook_tenant):
    post(client, "alpha", event_for(3, "ComputerCheckIn"))
    assert process_all() == ["ignored"]
    assert "next pull" in InventoryEvent.objects.get().error


def test_event_naming_no_computer_is_ignored(client, hook_tenant):
    post(client, "alpha", {"webhook": {"webhookEvent": "ComputerInventoryCompleted"}})
    assert process_all() == ["ignored"]


def test_inventory_event_without_api_applies_the_summary(client, hook_tenant):
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="4", os_version="14.1", architecture="arm64",
                               last_inventory_update=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    body = event_for(4)
    body["event"]["osVersion"] = "15.1"
    body["event"]["serialNumber"] = ""  # missing fields leave what is stored
    serial = computer.serial_number
    post(client, "alpha", body)
    assert process_all() == ["processed"]
    computer.refresh_from_db()
    assert computer.os_version == "15.1" and computer.architecture == "arm64" and computer.serial_number == serial
    assert computer.source_hash == ""  # the next full record is written in full
    assert "Summary fields only" in InventoryEvent.objects.get().error


def test_computer_added_without_api_creates_it_from_the_summary(client, hook_tenant):
    post(client, "alpha", event_for(9, "ComputerAdded"))
    assert process_all() == ["processed"]
    record = make_record(9, "alpha")
    computer = Computer.objects.get(tenant=hook_tenant, jamf_id="9")
    assert computer.udid == record["udid"] and computer.serial_number == record["hardware"]["serialNumber"]


def test_stale_summary_is_not_applied(client, hook_tenant):
    stored = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="4", os_version="15.1", last_inventory_update=stored)
    body = event_for(4, when=stored - datetime.timedelta(days=1))
    body["event"]["osVersion"] = "12.0"
    post(client, "alpha", body)
    process_all()
    computer.refresh_from_db()
    assert computer.os_version == "15.1"
    assert "Stale" in InventoryEvent.objects.get().error


def test_inventory_event_fetches_the_full_record_from_jamf(client, simulator, hook_tenant, jamf):
    connect(hook_tenant, simulator, count=10)
    pull_inventory(hook_tenant, full=True)
    for body in jamf.change("alpha", count=3, kind="inventory", seed=3):
        post(client, "alpha", body)
    assert process_all() == ["processed"] * 3
    assert simulator.counts["route:jamf_computer"] == 3
    for event in InventoryEvent.objects.filter(source="webhook"):
        jamf_id = str(json.loads(event.raw_body)["event"]["jssID"])
        served = jamf.servers["alpha"].record(int(jamf_id))
        computer = Computer.objects.get(tenant=hook_tenant, jamf_id=jamf_id)
        assert event.computer == computer
        assert computer.os_version == served["operatingSystem"]["version"]
        assert computer.sip == served["security"]["sipStatus"]
        assert computer.evaluated_at is not None


def test_computer_added_with_api_imports_the_full_record(client, simulator, hook_tenant, jamf):
    connect(hook_tenant, simulator, count=2)
    (body,) = jamf.add("alpha", count=1)
    post(client, "alpha", body)
    assert process_all() == ["processed"]
    computer = Computer.objects.get(tenant=hook_tenant, jamf_id="3")
    assert computer.user_accounts.exists() and computer.filevault_state


def test_jamf_unreachable_marks_the_event_failed_and_a_rerun_retries_it(client, simulator, hook_tenant, jamf,
                                                                        monkeypatch):
    connect(hook_tenant, simulator, count=2)
    sleeps = []
    monkeypatch.setattr(tasks, "client_for", lambda tenant: jamf_client_for(tenant, sleeps, max_retries=2))
    post(client, "alpha", event_for(1, tenant_key="alpha"))
    simulator.set_faults(drop_rate=1.0, paths=["/jamf/"])
    assert process_all() == ["failed"]
    assert "Jamf Pro API" in InventoryEvent.objects.get().error
    assert len(sleeps) == 2  # retried with backoff before giving up
    simulator.set_faults(drop_rate=0.0)
    assert process_all() == ["processed"]
    assert process_all() == ["skipped"]  # done once, never again


def test_check_in_for_a_new_mac_fetches_it_when_the_api_is_set(client, simulator, hook_tenant, jamf):
    connect(hook_tenant, simulator, count=4)
    post(client, "alpha", event_for(2, "ComputerCheckIn"))
    assert process_all() == ["processed"]
    assert Computer.objects.filter(tenant=hook_tenant, jamf_id="2").exists()


def test_stale_pending_events_are_picked_up(client, hook_tenant):
    computer = ComputerFactory(tenant=hook_tenant, jamf_id="7", last_check_in=None)
    post(client, "alpha", event_for(7, "ComputerCheckIn"))
    assert tasks.process_stale_pending() == {}  # too recent: its own task will run
    InventoryEvent.objects.update(received_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    assert tasks.process_stale_pending() == {"processed": 1}
    computer.refresh_from_db()
    assert computer.last_check_in is not None


def test_old_events_are_purged_but_pending_ones_kept(hook_tenant):
    old = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for status in ["processed", "ignored", "rejected", "failed", "pending"]:
        InventoryEvent.objects.create(tenant=hook_tenant, source="webhook", status=status)
    recent = InventoryEvent.objects.create(tenant=hook_tenant, source="webhook", status="processed")
    InventoryEvent.objects.exclude(pk=recent.pk).update(received_at=old)
    assert tasks.purge_old_events(days=14, chunk=2) == 4
    assert set(InventoryEvent.objects.values_list("status", flat=True)) == {"pending", "processed"}
    assert InventoryEvent.objects.filter(pk=recent.pk).exists()


def test_two_workers_adding_the_same_mac_end_in_one_update(hook_tenant, monkeypatch):
    from devices import importer

    ComputerFactory(tenant=hook_tenant, jamf_id="9", udid="UDID-9", os_version="14.0", last_inventory_update=None)
    real = importer._find_computer
    calls = []

    def not_yet_there_on_the_first_look(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(importer, "_find_computer", not_yet_there_on_the_first_look)
    when = datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)
    # Found by its UDID although the first look missed it ...
    outcome, computer_id, _ = importer.apply_summary(hook_tenant, {"udid": "UDID-9", "os_version": "15.1"}, when,
                                                     jamf_id="9")
    assert outcome == "updated"
    assert Computer.objects.get(pk=computer_id).os_version == "15.1"
    # ... and when the other worker's row appears only at INSERT time, the insert is retried as an update.
    calls.clear()
    monkeypatch.setattr(importer, "_find_computer", not_yet_there_on_the_first_look)
    real_create = Computer.objects.create
    monkeypatch.setattr(Computer.objects, "create", lambda **kw: real_create(**dict(kw, udid="UDID-9")))
    outcome, computer_id, _ = importer.apply_summary(hook_tenant, {"udid": "UDID-OTHER", "os_version": "15.2"},
                                                     when + datetime.timedelta(days=1), jamf_id="9")
    assert outcome == "updated" and len(calls) == 2
    assert Computer.objects.get(pk=computer_id).os_version == "15.2"
