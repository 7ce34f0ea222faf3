"""Event-driven delivery (issue 14): a change asks for a debounced delivery of its tenant, a parked message is
retried when it falls due, and Intune's verdict is read back when it can first be expected, then with backoff."""

import datetime

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from compliance import tasks
from compliance.models import ComplianceReport, OutboxMessage
from compliance.outbox import queue_reports
from devices.importer import apply_summary
from portal.models import Lane
from tests.compliance.sync_helpers import registered_macs

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


def queued(func):
    return [row for row in OrmQ.objects.order_by("id") if row.task["func"] == func]


def test_a_change_asks_for_one_debounced_delivery_once_committed(intune_tenant, settings,
                                                                django_capture_on_commit_callbacks):
    settings.INTUNE_DELIVERY_DEBOUNCE = 1.5
    macs = registered_macs(intune_tenant, 3)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for mac in macs:  # a burst of three webhook summaries
            apply_summary(intune_tenant, {"os_version": "15.4"}, timezone.now(), jamf_id=mac.jamf_id)
        assert not queued("compliance.tasks.deliver_task")  # nothing before the commit
    assert callbacks
    deliveries = queued("compliance.tasks.deliver_task")
    assert len(deliveries) == 1  # one delivery for the burst
    assert deliveries[0].lock >= before + datetime.timedelta(seconds=1.5)


def test_a_check_in_that_changes_nothing_asks_for_no_delivery(intune_tenant, django_capture_on_commit_callbacks):
    from devices.importer import record_check_ins

    mac, = registered_macs(intune_tenant, 1)
    with django_capture_on_commit_callbacks(execute=True):
        record_check_ins(intune_tenant, [(mac.jamf_id, timezone.now())])
    assert not queued("compliance.tasks.deliver_task")


def test_a_parked_message_is_retried_when_it_falls_due(intune_tenant, simulator, settings):
    """Intune throttles with Retry-After 7 s beyond the in-request retries: the delivery parks the message and
    asks for the next run exactly when it falls due, not at the next minute tick."""
    settings.INTUNE_DELIVERY_MAX_RETRY_WAIT = 0.01
    settings.INTUNE_MAX_RETRY_WAIT = 0.01
    registered_macs(intune_tenant, 2)
    queue_reports(intune_tenant.pk)
    simulator.set_faults(throttle_uploads=10, retry_after=7)

    tasks.deliver_task(intune_tenant.pk)

    parked = ComplianceReport.objects.filter(tenant=intune_tenant, status=Status.PENDING)
    assert parked.count() == 2
    due = min(parked.values_list("next_attempt_at", flat=True))
    assert due > timezone.now() + datetime.timedelta(seconds=3)
    retry, = queued("compliance.tasks.deliver_task")
    assert retry.lock == due
    assert Lane.objects.get(kind="deliver", tenant=intune_tenant).running_since is None


def test_a_delivery_asks_for_the_status_when_it_can_first_be_expected(intune_tenant, simulator, settings):
    settings.INTUNE_STATUS_FIRST_POLL = 3
    registered_macs(intune_tenant, 2)
    queue_reports(intune_tenant.pk)

    tasks.deliver_task(intune_tenant.pk)

    accepted = ComplianceReport.objects.filter(tenant=intune_tenant, status=Status.ACCEPTED)
    sent = min(accepted.values_list("sent_at", flat=True))
    poll, = queued("compliance.tasks.poll_status_task")
    assert poll.lock == sent + datetime.timedelta(seconds=3)

    OrmQ.objects.all().delete()
    tasks.poll_status_task(intune_tenant.pk)  # the simulator completes at once
    assert not accepted.exists()
    assert not queued("compliance.tasks.poll_status_task")  # nothing left to read back


def test_the_status_read_back_backs_off_while_intune_is_processing(intune_tenant, settings):
    settings.INTUNE_STATUS_FIRST_POLL = 3
    settings.INTUNE_STATUS_POLL_MAX_WAIT = 60
    now = timezone.now()
    mac, = registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    row = ComplianceReport.objects.get()

    def next_poll(age):
        OutboxMessage.objects.filter(pk=row.message_id).update(status=OutboxMessage.Status.ACCEPTED,
                                                                sent_at=now - datetime.timedelta(seconds=age))
        return (tasks.next_status_poll(intune_tenant.pk, now) - now).total_seconds()

    assert next_poll(0) == 3  # first expected 3 s after it was accepted
    assert next_poll(1) == 2
    assert next_poll(5) == 5  # then the message's age: 5, 10, 20, 40 ... apart
    assert next_poll(20) == 20
    assert next_poll(600) == 60  # at most a minute
    OutboxMessage.objects.all().delete()  # Intune's verdict was read: the message is done
    assert tasks.next_status_poll(intune_tenant.pk, now) is None
