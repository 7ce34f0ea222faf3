"""The scheduled Jamf Pro pull: full and incremental, reconcile only after a complete fetch."""

import datetime
import json

from django.utils import timezone

from devices import tasks
from devices.models import Computer, InventoryEvent
from devices.pull import OVERLAP, pull_inventory
from portal.models import SyncRun
from tests.devices.jamf_helpers import client_for, connect
from tests.factories import ComputerFactory


def test_full_pull_imports_the_fleet_and_records_the_run(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=25)
    result = pull_inventory(tenant_a, full=True, client=client_for(tenant_a, page_size=10))
    assert result.ok and result.complete
    assert (result.created, result.pages, result.fetched, result.total_count) == (25, 3, 25, 25)
    assert Computer.objects.filter(tenant=tenant_a).count() == 25
    assert len(result.changed_ids) == 25
    run = InventoryEvent.objects.get(source="api_pull")
    assert run.status == "processed" and run.event_type == "JamfFullPull"
    assert json.loads(run.raw_body)["created"] == 25
    sync_run = SyncRun.objects.get(tenant=tenant_a, kind="jamf_pull")
    assert sync_run.status == "succeeded" and sync_run.finished_at is not None
    assert sync_run.counters["created"] == 25 and sync_run.counters["mode"] == "full"

    again = pull_inventory(tenant_a, full=True, client=client_for(tenant_a, page_size=10))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 25)  # idempotent


def test_incremental_pull_asks_only_for_what_changed_since_the_last_pull(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=30)
    pull_inventory(tenant_a, full=True)
    jamf.change(tenant_a.slug, count=4, kind="inventory", seed=7)
    result = pull_inventory(tenant_a)
    assert result.ok
    assert result.filter.startswith('general.reportDate>="')
    assert result.fetched == 4 and result.updated == 4
    run = InventoryEvent.objects.filter(event_type="JamfIncrementalPull").get()
    assert json.loads(run.raw_body)["filter"] == result.filter


def test_incremental_filter_starts_at_the_last_successful_pull_less_the_overlap(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=3)
    first = pull_inventory(tenant_a)  # nothing before it: everything, no filter
    assert first.filter == "" and first.fetched == 3 and "No earlier pull" in first.note
    started = InventoryEvent.objects.get(source="api_pull").received_at
    second = pull_inventory(tenant_a)
    expected = (started - OVERLAP).astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert second.filter == 'general.reportDate>="%s"' % expected


def test_full_pull_marks_computers_missing_from_jamf_as_unmanaged(simulator, tenant_a, tenant_b, jamf):
    connect(tenant_a, simulator, count=12)
    pull_inventory(tenant_a, full=True)
    other = ComputerFactory(tenant=tenant_b, jamf_id="5")
    jamf.remove(tenant_a.slug, [5, 9])
    result = pull_inventory(tenant_a, full=True, client=client_for(tenant_a, page_size=4))
    assert result.complete and result.unmanaged == 2
    unmanaged = set(Computer.objects.filter(tenant=tenant_a, managed=False).values_list("jamf_id", flat=True))
    assert unmanaged == {"5", "9"}
    other.refresh_from_db()
    assert other.managed  # another tenant's Mac with the same Jamf ID is untouched


def test_incremental_pull_never_marks_anything(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=6)
    pull_inventory(tenant_a, full=True)
    jamf.remove(tenant_a.slug, [1])
    pull_inventory(tenant_a)
    assert not Computer.objects.filter(managed=False).exists()


def test_failed_page_marks_nothing_and_records_the_failure(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=20)
    pull_inventory(tenant_a, full=True)
    jamf.remove(tenant_a.slug, [2, 3])
    simulator.set_faults(jamf_fail_pages=[2])
    result = pull_inventory(tenant_a, full=True, client=client_for(tenant_a, page_size=5))
    assert not result.ok and not result.complete and result.unmanaged == 0
    assert "500" in result.error
    assert result.fetched >= 5  # what came before the failure was still imported
    assert not Computer.objects.filter(managed=False).exists()
    run = InventoryEvent.objects.filter(source="api_pull").latest("received_at")
    assert run.status == "failed" and "500" in run.error
    sync_run = SyncRun.objects.filter(kind="jamf_pull").latest("started_at")
    assert sync_run.status == "failed" and "500" in sync_run.error and sync_run.counters["fetched"] >= 5


def test_unreachable_jamf_marks_nothing(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=4)
    pull_inventory(tenant_a, full=True)
    simulator.set_faults(error_rate=1.0, paths=["/jamf/"])
    result = pull_inventory(tenant_a, full=True, client=client_for(tenant_a))
    assert not result.ok
    assert Computer.objects.filter(tenant=tenant_a, managed=True).count() == 4


def test_empty_answer_never_wipes_a_fleet(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=4)
    pull_inventory(tenant_a, full=True)
    jamf.remove(tenant_a.slug, [1, 2, 3, 4])
    result = pull_inventory(tenant_a, full=True)
    assert result.ok and result.unmanaged == 0 and "never wipes" in result.note
    assert Computer.objects.filter(tenant=tenant_a, managed=True).count() == 4


def test_a_fleet_changing_while_paging_is_not_reconciled(simulator, tenant_a, jamf, monkeypatch):
    connect(tenant_a, simulator, count=10)
    pull_inventory(tenant_a, full=True)
    client = client_for(tenant_a, page_size=5)
    original = client.computers_page

    def page_then_remove(page, *args, **kwargs):
        body = original(page, *args, **kwargs)
        if page == 0:
            jamf.remove(tenant_a.slug, [1])  # deleted after the first page was read
        return body

    monkeypatch.setattr(client, "computers_page", page_then_remove)
    result = pull_inventory(tenant_a, full=True, client=client)
    assert not result.complete and result.unmanaged == 0 and "changed while paging" in result.note
    assert SyncRun.objects.filter(kind="jamf_pull").latest("started_at").status == "partial"


def test_a_computer_back_in_jamf_is_managed_again(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=3)
    pull_inventory(tenant_a, full=True)
    Computer.objects.filter(tenant=tenant_a, jamf_id="2").update(managed=False, source_hash="")
    pull_inventory(tenant_a, full=True)
    assert Computer.objects.get(tenant=tenant_a, jamf_id="2").managed


def test_pull_task_reevaluates_changed_computers(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=5)
    counters = tasks.pull_tenant(tenant_a.pk, full=True)
    assert counters["created"] == 5
    assert not Computer.objects.filter(tenant=tenant_a, evaluated_at__isnull=True).exists()


def test_pull_all_queues_one_pull_per_tenant_with_credentials(simulator, tenant_a, tenant_b, jamf):
    from django_q.models import OrmQ

    connect(tenant_a, simulator, count=1)
    assert tasks.pull_all(full=False) == 1
    assert OrmQ.objects.count() == 1


def test_pull_of_the_v4_server(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=4, version="11.30.2")
    result = pull_inventory(tenant_a, full=True)
    assert result.api_version == "v4" and result.created == 4
    assert Computer.objects.filter(tenant=tenant_a, last_check_in__isnull=True).count() == 0
    assert Computer.objects.filter(tenant=tenant_a, last_check_in__gt=timezone.now() - datetime.timedelta(days=60)) \
        .count() == 4
