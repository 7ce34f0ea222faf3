"""Run bookkeeping shared by every app: a :class:`~portal.models.SyncRun` row around a block of background work.

It lives in portal, the ground devices and compliance both stand on, so a Jamf Pro pull (devices) and a
delivery to Intune (compliance) record their runs the same way without importing each other.
"""

import contextlib

from django.utils import timezone

from portal.models import SyncRun


def describe_error(exc):
    """The text a failed run stores: an error that explains itself (``run_error()``) says it in its own words."""
    explain = getattr(exc, "run_error", None)
    if callable(explain):
        return explain()
    return "%s: %s" % (type(exc).__name__, exc)


@contextlib.contextmanager
def record_run(tenant_id, kind, keep_if_idle=True):
    """Record a SyncRun around a block; the block fills ``run.counters`` and may set ``run.error``.

    An exception marks the run failed (and is raised again). ``keep_if_idle=False`` deletes a run that
    did nothing, so the frequent runs do not bury the ones that matter.
    """
    run = SyncRun.objects.create(tenant_id=tenant_id, kind=kind, started_at=timezone.now())
    try:
        yield run
    except Exception as exc:
        run.status = SyncRun.Status.FAILED
        run.error = describe_error(exc)
        run.finished_at = timezone.now()
        run.save()
        raise
    run.finished_at = timezone.now()
    if not run.status or run.status == SyncRun.Status.RUNNING:
        run.status = SyncRun.Status.PARTIAL if run.error else SyncRun.Status.SUCCEEDED
    if not keep_if_idle and not run.error and not any(
        value for key, value in run.counters.items() if isinstance(value, int) and key != "pairs"
    ):
        run.delete()
        return
    run.save()
