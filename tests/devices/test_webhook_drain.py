"""Webhook events are processed a batch at a time by one drain task per tenant, not one task each."""

import datetime

import pytest
from django_q.models import OrmQ

from devices import tasks
from devices.models import Computer, InventoryEvent
from tests.devices.test_webhooks import client, event_for, hook_tenant, post  # noqa: F401 - fixtures
from tests.factories import ComputerFactory

pytestmark = pytest.mark.django_db
T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.UTC)


def test_a_burst_of_events_queues_one_drain(client, hook_tenant):  # noqa: F811
    for n in range(5):
        ComputerFactory(tenant=hook_tenant, jamf_id=str(n))
        assert post(client, "alpha", event_for(n, "ComputerCheckIn", when=T0)).status_code == 202
    assert InventoryEvent.objects.filter(status="pending").count() == 5
    assert OrmQ.objects.count() == 1


def test_a_drain_applies_check_ins_in_a_batch_newest_wins(client, hook_tenant):  # noqa: F811
    macs = [ComputerFactory(tenant=hook_tenant, jamf_id=str(n), last_check_in=T0) for n in range(30)]
    for n in range(30):
        post(client, "alpha", event_for(n, "ComputerCheckIn", when=T0 + datetime.timedelta(minutes=15)))
    post(client, "alpha", event_for(3, "ComputerCheckIn", when=T0 + datetime.timedelta(minutes=30)))
    post(client, "alpha", event_for(3, "ComputerCheckIn", when=T0 - datetime.timedelta(days=1)))  # late, older
    counts = tasks.drain_events(hook_tenant.pk)
    assert counts == {"processed": 32}
    assert not InventoryEvent.objects.filter(status="pending").exists()
    assert Computer.objects.get(pk=macs[3].pk).last_check_in == T0 + datetime.timedelta(minutes=30)
    assert Computer.objects.get(pk=macs[7].pk).last_check_in == T0 + datetime.timedelta(minutes=15)
    event = InventoryEvent.objects.filter(computer=macs[7]).get()
    assert event.processed_at is not None


def test_a_drain_costs_a_bounded_number_of_queries(client, hook_tenant, django_assert_max_num_queries):  # noqa: F811
    for n in range(40):
        ComputerFactory(tenant=hook_tenant, jamf_id=str(n), last_check_in=T0)
        post(client, "alpha", event_for(n, "ComputerCheckIn", when=T0 + datetime.timedelta(minutes=15)))
    # Per batch: read events, look up Macs, one UPDATE per Mac (guarded), evaluation, bulk status update.
    with django_assert_max_num_queries(40 + 40):
        tasks.drain_events(hook_tenant.pk)


def test_a_check_in_for_an_unknown_mac_and_other_events_take_the_single_path(client, hook_tenant):  # noqa: F811
    ComputerFactory(tenant=hook_tenant, jamf_id="1", last_check_in=T0)
    post(client, "alpha", event_for(1, "ComputerCheckIn", when=T0 + datetime.timedelta(hours=1)))
    post(client, "alpha", event_for(99, "ComputerCheckIn", when=T0))  # unknown, no Jamf API: ignored
    post(client, "alpha", event_for(5, "ComputerAdded", when=T0))  # summary applied
    counts = tasks.drain_events(hook_tenant.pk)
    assert counts == {"processed": 2, "ignored": 1}
    assert Computer.objects.filter(tenant=hook_tenant, jamf_id="5").exists()


def test_the_sweep_drains_events_a_lost_drain_left_behind(client, hook_tenant):  # noqa: F811
    ComputerFactory(tenant=hook_tenant, jamf_id="1", last_check_in=None)
    post(client, "alpha", event_for(1, "ComputerCheckIn", when=T0))
    assert tasks.process_stale_pending() == {}  # too recent: its drain will run
    InventoryEvent.objects.update(received_at=T0)
    assert tasks.process_stale_pending() == {"processed": 1}
    assert Computer.objects.get().last_check_in == T0


def test_a_burst_of_inventory_events_is_fetched_and_imported_as_one_batch(client, hook_tenant, simulator, jamf,  # noqa: F811
                                                                          django_assert_max_num_queries):
    """Each Mac's full record comes from the Jamf Pro API once; the records are imported in one batch (one
    transaction and one evaluation), and every event ends as the single path would end it."""
    from devices.pull import pull_inventory
    from tests.devices.jamf_helpers import connect

    connect(hook_tenant, simulator, count=12)
    pull_inventory(hook_tenant, full=True)
    bodies = jamf.change("alpha", count=10, kind="inventory")
    for body in bodies:
        assert post(client, "alpha", body).status_code == 202
    post(client, "alpha", bodies[0])  # the same Mac twice: fetched once
    jamf.remove("alpha", [int(bodies[1]["event"]["jssID"])])  # deleted from Jamf Pro since its webhook

    with django_assert_max_num_queries(60):  # not ~10 queries per event, as one by one
        counts = tasks.drain_events(hook_tenant.pk)

    assert counts == {"processed": 10, "ignored": 1}
    gone = InventoryEvent.objects.get(computer__isnull=True, status="ignored")
    assert "has no computer" in gone.error
    changed = Computer.objects.filter(tenant=hook_tenant, jamf_id=str(bodies[2]["event"]["jssID"])).get()
    assert changed.evaluated_at is not None
    assert not InventoryEvent.objects.filter(status="pending").exists()
