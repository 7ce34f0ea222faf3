"""portal.lanes: one run per (kind, tenant), coordinated by database row updates, across processes."""

import datetime

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from portal import lanes
from portal.models import Lane
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
FUNC = "tests.portal.test_lanes.noop"


def noop(tenant_id):
    return tenant_id


@pytest.fixture
def tenant():
    return TenantFactory()


def test_requests_while_one_is_queued_queue_nothing_more(tenant):
    assert lanes.request("deliver", tenant.pk, FUNC) is True
    assert lanes.request("deliver", tenant.pk, FUNC) is False
    assert lanes.request("deliver", tenant.pk, FUNC) is False
    assert OrmQ.objects.count() == 1
    lane = Lane.objects.get(kind="deliver", tenant=tenant)
    assert lane.dirty and lane.due_at is not None and lane.running_since is None


def test_a_later_request_waits_in_the_broker_until_it_is_due(tenant):
    at = timezone.now() + datetime.timedelta(seconds=30)
    lanes.request("deliver", tenant.pk, FUNC, at=at)
    task = OrmQ.objects.get()
    assert task.lock == at  # the ORM broker hands out only rows whose lock has passed
    # An earlier need gets an earlier task; the later one stays (running it then is harmless).
    assert lanes.request("deliver", tenant.pk, FUNC) is True
    assert OrmQ.objects.count() == 2
    assert Lane.objects.get().due_at < at


def test_lanes_are_per_kind_and_tenant(tenant):
    other = TenantFactory()
    assert lanes.request("deliver", tenant.pk, FUNC)
    assert lanes.request("deliver", other.pk, FUNC)
    assert lanes.request("drain", tenant.pk, FUNC)
    assert OrmQ.objects.count() == 3


def test_a_run_releases_the_lane_and_the_next_request_queues_again(tenant):
    lanes.request("deliver", tenant.pk, FUNC)
    OrmQ.objects.all().delete()  # the worker took it
    assert lanes.run("deliver", tenant.pk, lambda since: "done", FUNC) == ["done"]
    lane = Lane.objects.get()
    assert (lane.dirty, lane.running_since, lane.due_at) == (False, None, None)
    assert lanes.request("deliver", tenant.pk, FUNC) is True


def test_a_burst_during_a_run_is_taken_by_that_run_going_round_again(tenant):
    """The repro of issue 14: events that arrive while a drain runs must not wait for the minute sweep."""
    seen = []

    def work(since):
        seen.append(len(seen))
        if len(seen) == 1:  # a burst arrives while the first round is working (another process, say)
            for _ in range(6):
                assert lanes.request("drain", tenant.pk, FUNC) is False  # no second task: the runner has it
        return len(seen)

    assert lanes.run("drain", tenant.pk, work, FUNC) == [1, 2]
    assert OrmQ.objects.count() == 0
    assert Lane.objects.get().running_since is None


def test_a_burst_during_a_debounced_run_is_handed_to_a_task_a_moment_later(tenant):
    def work(since):
        lanes.request("deliver", tenant.pk, FUNC)  # a change committed while the delivery was sending
        return "sent"

    before = timezone.now()
    assert lanes.run("deliver", tenant.pk, work, FUNC, again_after=1.5) == ["sent"]
    task = OrmQ.objects.get()
    assert task.lock >= before + datetime.timedelta(seconds=1.5)
    lane = Lane.objects.get()
    assert lane.running_since is None and lane.dirty


def test_a_second_runner_stands_aside_and_a_dead_one_is_taken_over(tenant):
    Lane.objects.create(kind="drain", tenant=tenant, running_since=timezone.now())
    assert lanes.run("drain", tenant.pk, lambda since: "work", FUNC) is None
    assert lanes.request("drain", tenant.pk, FUNC) is False  # marked; the running one goes round again

    Lane.objects.update(running_since=timezone.now() - lanes.STALE_AFTER - datetime.timedelta(seconds=1))
    assert lanes.request("drain", tenant.pk, FUNC) is True  # the runner died: a new task
    assert lanes.run("drain", tenant.pk, lambda since: "work", FUNC) == ["work"]


def test_a_failing_run_lets_go_of_the_lane(tenant):
    def work(since):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        lanes.run("deliver", tenant.pk, work, FUNC)
    assert Lane.objects.get().running_since is None
    assert lanes.request("deliver", tenant.pk, FUNC) is True


def test_with_another_broker_a_later_task_waits_in_a_one_off_schedule(tenant, monkeypatch):
    """Never started at once: it would find nothing due yet and ask again, in a loop."""
    from django_q.conf import Conf
    from django_q.models import Schedule

    monkeypatch.setattr(Conf, "ORM", None)
    at = timezone.now() + datetime.timedelta(seconds=30)
    assert lanes.request("deliver", tenant.pk, FUNC, at=at)
    assert OrmQ.objects.count() == 0
    schedule = Schedule.objects.get(func=FUNC)
    assert (schedule.schedule_type, schedule.next_run, schedule.args) == (Schedule.ONCE, at, "(%d,)" % tenant.pk)
