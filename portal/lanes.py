"""One background run per (kind, tenant) at a time, coordinated through the database: no Redis, no per-process marks.

A *lane* is a row of :class:`~portal.models.Lane` per kind of work ("drain", "deliver", "status") and tenant.
Anything that wants the work done calls :func:`request`; the task that does it wraps the work in :func:`run`:

- ``request`` marks the lane *dirty* and queues a task for ``at`` only when none is queued for that time or
  earlier and none is running. Each step is one conditional UPDATE, so of two processes asking at once
  exactly one queues the task (PostgreSQL re-checks the WHERE after a row lock; SQLite writes one at a time).
- ``run`` claims the lane (one runner), takes the dirty mark *before* the work reads anything, and at the end
  releases the lane only if nobody asked again meanwhile; otherwise it goes again, at once or after a debounce.
  A request that arrives during a run is therefore picked up by that run or by the next one, never lost.
- A runner that died (worker killed) leaves a claim older than :data:`STALE_AFTER`; the next request or
  the safety-net schedules take the lane over.

Tasks queued for later go through the ORM broker with their ``lock`` time set to when they are due: the
broker hands out only rows whose lock has passed, so the task starts within a poll (1 s) of that time, with
no worker sleeping. (django-q2's own scheduler ticks only every 30 s.)
"""

import datetime
import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from portal.models import Lane

logger = logging.getLogger(__name__)

# A claim or a queued task older than this is taken to be lost: longer than a task may run (Q_CLUSTER timeout).
STALE_AFTER = datetime.timedelta(seconds=int(Conf.TIMEOUT or 300) + 60)
EARLIER_BY = datetime.timedelta(milliseconds=500)  # a queued task this much later than wanted gets an earlier one


class _DueAt(ORM):
    """The ORM broker, enqueueing a task that becomes visible to workers only at ``due``."""

    def __init__(self, due):
        super().__init__(list_key=Conf.CLUSTER_NAME)
        self.due = due

    def enqueue(self, task):
        return self.get_connection().create(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=self.due).pk


def enqueue(func, *args, at=None, **kwargs):
    """``async_task`` that starts no earlier than ``at``.

    With the ORM broker (the supported one) the task row becomes visible at ``at``; with another broker a
    one-off django-q2 schedule runs it (the scheduler ticks every 30 s, so up to that much later), never at once:
    a task started early would find nothing due and ask again, in a loop.
    """
    now = timezone.now()
    if at is None or at <= now or Conf.SYNC:
        return async_task(func, *args, **kwargs)
    if Conf.ORM:
        return async_task(func, *args, broker=_DueAt(at), **kwargs)
    return Schedule.objects.create(func=func, args=repr(tuple(args)), schedule_type=Schedule.ONCE, next_run=at,
                                   name=(kwargs.get("task_name") or func)[:100]).pk


def _lane(kind, tenant_id):
    return Lane.objects.filter(kind=kind, tenant_id=tenant_id)


def _ensure(kind, tenant_id):
    if not _lane(kind, tenant_id).exists():
        try:
            with transaction.atomic():
                Lane.objects.create(kind=kind, tenant_id=tenant_id)
        except IntegrityError:
            pass  # another process made it a moment ago


def request(kind, tenant_id, func, at=None, task_name=None, group=None):
    """Ask for a run of ``func(tenant_id)`` for this lane no later than ``at`` (default: now).

    Returns True when this call queued the task. Call it inside the transaction that made the work (the
    request and the queued task then commit with it) or after that commit. On the hot path (a lane already
    marked, a run in progress) both UPDATEs match no row, so concurrent requests do not queue on its lock.
    """
    now = timezone.now()
    at = max(at or now, now)
    _ensure(kind, tenant_id)
    lane = _lane(kind, tenant_id)
    lane.filter(dirty=False).update(dirty=True, requested_at=now)
    stale = now - STALE_AFTER
    queued = lane.filter(
        Q(running_since__isnull=True) | Q(running_since__lt=stale),
        Q(due_at__isnull=True) | Q(due_at__gt=at + EARLIER_BY) | Q(due_at__lt=stale),
    ).update(due_at=at)
    if queued:
        enqueue(func, tenant_id, at=at, task_name=task_name or "%s %s" % (kind, tenant_id), group=group or kind)
    return bool(queued)


def run(kind, tenant_id, work, func, again_after=None, task_name=None, group=None):
    """Do ``work(since)`` as the lane's only runner, again while requests arrive; returns the list of its results.

    ``since`` is when the lane's previous round started (None the first time): what changed after it is new to
    this round.

    ``again_after`` (seconds): when a request came in during the work, hand over to a task that starts this
    much later (a debounce: a burst goes out together) instead of going again at once. Returns None when
    another runner holds the lane (it will see this task's request).
    """
    now = timezone.now()
    _ensure(kind, tenant_id)
    lane = _lane(kind, tenant_id)
    claimed = lane.filter(Q(running_since__isnull=True) | Q(running_since__lt=now - STALE_AFTER)).update(
        running_since=now, due_at=None
    )
    if not claimed:
        return None
    results = []
    try:
        while True:
            since = lane.values_list("round_started_at", flat=True).first()
            started = timezone.now()
            lane.update(dirty=False, running_since=started, round_started_at=started)  # before the work reads
            results.append(work(since))
            if lane.filter(dirty=False).update(running_since=None, finished_at=timezone.now()):
                return results  # nobody asked meanwhile: released
            if again_after:
                lane.update(running_since=None, finished_at=timezone.now())
                request(kind, tenant_id, func, at=timezone.now() + datetime.timedelta(seconds=again_after),
                        task_name=task_name, group=group)
                return results
    except BaseException:
        lane.update(running_since=None, finished_at=timezone.now())  # the next request or sweep goes again
        raise
