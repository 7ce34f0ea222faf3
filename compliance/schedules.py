"""The django-q2 schedules of the compliance app, created or updated by name after every migrate."""

from django_q.models import Schedule

# name -> Schedule fields. catch_up is a cluster setting (False): a missed run is not replayed.
SCHEDULES = [
    # Reports to Intune (compliance/sync.py): evaluate and queue, deliver (also right after an evaluation
    # that made reports), read back Intune's verdict, forget old history.
    {
        "name": "compliance: evaluate and queue reports",
        "func": "compliance.tasks.evaluate_all_task",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
        "repeats": -1,
    },
    {
        "name": "compliance: deliver reports to Intune",
        "func": "compliance.tasks.deliver_all_task",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
    {
        "name": "compliance: read back Intune's status",
        "func": "compliance.tasks.poll_status_all_task",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
    {
        "name": "compliance: prune report history",
        "func": "compliance.tasks.prune_history_task",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "compliance: hourly evaluation sweep",
        "func": "compliance.tasks.sweep_task",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    },
    {
        # Warn tenant admins 30, 14, 7 and 1 days before a tenant's last valid client secret expires.
        "name": "compliance: daily client secret expiry check",
        "func": "compliance.tasks.check_secret_expiry",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "compliance: daily snapshot of fleet counts",
        "func": "compliance.tasks.snapshot_task",
        "schedule_type": Schedule.HOURLY,  # today's row is overwritten each hour; the day's last run wins
        "repeats": -1,
    },
    # Jamf Pro inventory (devices/tasks.py): each queues one pull task per tenant with API credentials.
    {
        "name": "devices: Jamf Pro incremental pull",
        "func": "devices.tasks.pull_all",
        "kwargs": "{'full': False}",
        "schedule_type": Schedule.MINUTES,
        "minutes": 15,
        "repeats": -1,
    },
    {
        "name": "devices: Jamf Pro full pull and reconcile",
        "func": "devices.tasks.pull_all",
        "kwargs": "{'full': True}",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "devices: delete old inventory events",
        "func": "devices.tasks.purge_old_events",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "devices: process webhook events left pending",
        "func": "devices.tasks.process_stale_pending",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
    {
        "name": "portal: delete audit entries past AUDIT_RETENTION_DAYS",
        "func": "portal.audit.prune",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
]


def ensure_schedules(using="default", **kwargs):
    """post_migrate receiver: make the stored schedules match :data:`SCHEDULES`."""
    for spec in SCHEDULES:
        spec = dict(spec)
        Schedule.objects.using(using).update_or_create(name=spec.pop("name"), defaults=spec)
