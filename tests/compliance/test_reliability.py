"""Reliability of the delivery against the simulator's faults (issue 5): every report reaches Intune once.

Each case runs the real delivery code, the real msal and requests, over HTTPS to the simulator. The
backoffs are milliseconds (``fast_delivery``), so a case that needs dozens of retries runs in seconds.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from compliance.delivery import deliver_tenant
from compliance.intune.client import IntuneClient, clear_caches
from compliance.models import ComplianceReport, OutboxMessage
from compliance.outbox import queue_reports
from compliance.sync import deliver
from devices.models import UserAccount
from portal.models import SyncRun
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import applied_once, drain, enable, registered_macs, statuses
from tests.factories import TenantFactory

Status = ComplianceReport.Status
BASE_DIR = Path(django_settings.BASE_DIR)


def assert_each_pair_applied_once(simulator, tenant):
    """Every message ID of the tenant was applied once at the simulator, and each (device, user) by one message."""
    ids, applied = applied_once(simulator, tenant)
    assert ids == applied
    service = microsoft(simulator)
    for row in ComplianceReport.objects.filter(tenant=tenant, status=Status.COMPLETED):
        record = service.device(tenant.entra_tenant, row.entra_device_id)[row.entra_user_id.lower()]
        # The simulator counts each applied entity: a pair applied by one message counts its two entities.
        assert record["messages"] == len(row.payload), row
        assert record["last_message"] == str(row.message_id)
        assert record["inventory"] == row.payload[0]


@pytest.mark.django_db
def test_thirty_percent_5xx_429_and_drops_end_completed_and_each_message_applied_once(simulator, intune_tenant):
    tenant = intune_tenant
    registered_macs(tenant, 30)  # six messages of five
    queue_reports(tenant.pk)
    simulator.set_faults(error_rate=0.15, throttle_rate=0.15, drop_rate=0.05, retry_after=0.01)

    drain(tenant)

    assert statuses(tenant) == {Status.COMPLETED: 30}, list(ComplianceReport.objects.values_list("error_detail")[:2])
    assert simulator.counts["fault:503"] and simulator.counts["fault:429"]
    service = microsoft(simulator)
    # At least the six messages of five; a retried batch may be re-packed, but every message ID is
    # applied once and every pair by exactly one message (the invariant that matters).
    ids, _applied = applied_once(simulator, tenant)
    assert service.stats["uploads_applied"] == len(ids) >= 6
    assert_each_pair_applied_once(simulator, tenant)
    assert max(ComplianceReport.objects.values_list("attempts", flat=True)) >= 1


@pytest.mark.django_db
def test_answers_lost_after_the_message_was_applied_are_resent_under_the_same_id(simulator, intune_tenant):
    tenant = intune_tenant
    registered_macs(tenant, 50)  # ten messages of five, each answer lost with a chance of one in two
    queue_reports(tenant.pk)
    simulator.set_faults(drop_answer_rate=0.5, retry_after=0.01)

    drain(tenant)

    service = microsoft(simulator)
    assert simulator.counts["fault:drop_answer"] >= 1
    assert statuses(tenant) == {Status.COMPLETED: 50}
    # Each lost answer was followed by a resend of the same message, acknowledged and not applied again.
    assert service.stats["uploads_duplicate"] >= 1
    ids, _applied = applied_once(simulator, tenant)
    assert service.stats["uploads_applied"] == len(ids)
    assert_each_pair_applied_once(simulator, tenant)


@pytest.mark.django_db
def test_fresh_tokens_rejected_and_tokens_expiring_mid_run(simulator, intune_tenant):
    tenant = intune_tenant
    registered_macs(tenant, 15)
    queue_reports(tenant.pk)
    service = microsoft(simulator)
    simulator.set_faults(reject_fresh_tokens=3)

    drain(tenant)
    assert simulator.counts["microsoft:rejected_fresh_token"] == 3
    assert statuses(tenant) == {Status.COMPLETED: 15}

    # Every token Entra issued expires now, while msal still holds them: the next calls answer 401.
    for token in service.tokens.values():
        token.expires = 0
    registered_macs(tenant, 10)
    queue_reports(tenant.pk)
    drain(tenant)

    assert statuses(tenant) == {Status.COMPLETED: 25}
    assert_each_pair_applied_once(simulator, tenant)
    assert sum(1 for method, path, status in simulator.log if status == 401) >= 4


@pytest.mark.django_db
def test_a_throttled_token_endpoint_with_a_non_oauth_answer_does_not_wedge_delivery(simulator, intune_tenant):
    # A 429 whose JSON "error" is an object (not OAuth's string) used to leave msal unable to build any later
    # token request (a TypeError from its telemetry); the client now starts a fresh msal app.
    tenant = intune_tenant
    registered_macs(tenant, 3)
    queue_reports(tenant.pk)
    sim_id = microsoft(simulator).tenant(tenant.entra_tenant).id
    simulator.set_faults(throttle_rate=1.0, retry_after=0.01, paths=["/%s/oauth2/" % sim_id])
    deliver_tenant(tenant.pk)
    assert {r.error_code for r in ComplianceReport.objects.all()} == {"throttled"}

    simulator.set_faults(throttle_rate=0.0)
    time.sleep(0.05)
    drain(tenant)
    assert statuses(tenant) == {Status.COMPLETED: 3}


@pytest.mark.django_db
def test_a_payload_intune_rejects_with_400_fails_alone_with_the_detail(simulator, intune_tenant):
    tenant = intune_tenant
    macs = registered_macs(tenant, 9)
    bad = UserAccount.objects.get(computer=macs[4])
    UserAccount.objects.filter(pk=bad.pk).update(entra_user_id="not-a-guid")  # Intune: UserId must be a GUID
    queue_reports(tenant.pk)

    drain(tenant)

    assert statuses(tenant) == {Status.COMPLETED: 8, Status.FAILED: 1}
    failed = ComplianceReport.objects.get(status=Status.FAILED)
    assert failed.user_account_id == bad.pk
    assert failed.error_code == "BadRequest"
    assert "UserId must be a GUID" in failed.error_detail
    service = microsoft(simulator)
    assert service.stats["uploads_rejected"] >= 2  # the batch of five, then its halves down to the one
    assert_each_pair_applied_once(simulator, tenant)


@pytest.mark.django_db(transaction=True)
def test_two_tenants_one_failing_the_healthy_one_is_not_delayed(simulator, fast_delivery):
    fast_delivery.INTUNE_BACKOFF_BASE = 60  # the failing tenant's rows wait their turn instead of spinning
    fast_delivery.INTUNE_BACKOFF_MAX = 120
    fast_delivery.INTUNE_DELIVERY_HTTP_RETRIES = 0
    healthy = TenantFactory(slug="healthy", name="Healthy")
    failing = TenantFactory(slug="failing", name="Failing")
    enable(simulator, healthy)
    sick = enable(simulator, failing)
    registered_macs(healthy, 10)
    registered_macs(failing, 10)
    queue_reports(healthy.pk)
    queue_reports(failing.pk)
    IntuneClient.from_tenant(failing).check_tenant()  # its sign-in worked before the outage
    # The failing customer's Entra ID answers slowly, and then with 503: no token, no delivery for it.
    simulator.set_faults(error_rate=1.0, latency_ms=1000, paths=["/%s/" % sick.id])

    def deliver_failing():
        try:
            deliver(failing.pk, incremental=False)
        finally:
            connection.close()  # this thread's own database connection

    stuck = threading.Thread(target=deliver_failing)
    stuck.start()
    try:
        time.sleep(0.2)  # the failing tenant's worker is now waiting on its Entra ID
        counters = deliver(healthy.pk, incremental=False)
        healthy_done_while_failing_busy = stuck.is_alive()
    finally:
        stuck.join()

    assert counters["accepted"] == 10
    assert healthy_done_while_failing_busy
    assert statuses(healthy) == {Status.ACCEPTED: 10}
    rows = list(ComplianceReport.objects.filter(tenant=failing))
    assert {(r.status, r.attempts, r.error_code) for r in rows} == {(Status.PENDING, 1, "server_error")}
    assert all(r.next_attempt_at > r.updated_at for r in rows)  # they wait their backoff, not the next minute
    runs = {run.tenant_id: run for run in SyncRun.objects.filter(kind=SyncRun.Kind.DELIVER)}
    assert runs[healthy.pk].status == SyncRun.Status.SUCCEEDED
    assert runs[failing.pk].status == SyncRun.Status.FAILED and "server error" in runs[failing.pk].error

    simulator.set_faults(error_rate=0.0, latency_ms=0, paths=[])
    # Time passes: the backoff comes due, and msal forgets the 5xx it keeps answering from memory for 5 s.
    OutboxMessage.objects.filter(tenant=failing).update(next_attempt_at=timezone.now())
    clear_caches()
    drain(failing)
    assert statuses(failing) == {Status.COMPLETED: 10}
    assert_each_pair_applied_once(simulator, failing)


# -- A delivery worker killed mid-send, as a real process, then restarted ------------------------------------


class SharedDatabase:
    """Hand the test database to a child process: PostgreSQL by name; SQLite (in memory) through a file copy."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "worker.sqlite3"

    @property
    def url(self):
        s = connection.settings_dict
        if connection.vendor == "postgresql":
            auth = s["USER"] + (":" + s["PASSWORD"] if s["PASSWORD"] else "")
            return "postgres://%s@%s:%s/%s" % (auth, s["HOST"] or "127.0.0.1", s["PORT"] or 5432, s["NAME"])
        return "sqlite:///%s" % self.path

    def export(self):
        if connection.vendor == "sqlite":
            connection.ensure_connection()
            self.path.unlink(missing_ok=True)
            target = sqlite3.connect(self.path)
            connection.connection.backup(target)
            target.close()

    def load(self):
        if connection.vendor == "sqlite":
            source = sqlite3.connect(self.path)
            source.backup(connection.connection)
            source.close()


def worker(db, simulator, **extra):
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": db.url,
        "PORTAL_ENCRYPTION_KEYS": ",".join(django_settings.PORTAL_ENCRYPTION_KEYS),
        "SECRET_KEY": django_settings.SECRET_KEY,
        "PORTAL_CA_BUNDLE": str(simulator.ca_path),
        "PORTAL_CLOUD_OVERRIDES": '{"global": {"login": "%s", "graph": "%s/graph"}}' % (
            simulator.base_url, simulator.base_url),
        "INTUNE_BATCH_SIZE": "5",
        "INTUNE_LEASE_SECONDS": "1",
        "INTUNE_DELIVERY_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
        **extra,
    })
    return subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "sync_intune", "--tenant", "alpha", "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=BASE_DIR,
    )


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_send_then_restarted_delivers_everything_once(simulator, intune_tenant, tmp_path):
    tenant = intune_tenant
    registered_macs(tenant, 20)  # four messages of five
    queue_reports(tenant.pk)
    service = microsoft(simulator)
    # Intune applies the first message, but its answer never reaches the worker: it is killed while waiting.
    simulator.set_faults(answer_delay=5)
    db = SharedDatabase(tmp_path)
    db.export()

    first = worker(db, simulator)
    deadline = time.monotonic() + 60
    while service.stats["uploads_applied"] < 1 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()
    output = first.communicate()[0].decode()
    assert service.stats["uploads_applied"] == 1, output
    db.load()
    in_flight, = OutboxMessage.objects.filter(tenant=tenant, lease_expires_at__isnull=False)
    applied_id, = service.messages
    assert str(in_flight.id) == applied_id and in_flight.claimed, statuses(tenant)
    assert ComplianceReport.objects.filter(message_id=applied_id, status=Status.PENDING).count() == 5

    simulator.set_faults(answer_delay=0)
    time.sleep(1.1)  # the dead worker's lease (INTUNE_LEASE_SECONDS=1) runs out
    db.export()
    second = worker(db, simulator)
    output = second.communicate(timeout=120)[0].decode()
    assert second.returncode == 0, output
    db.load()

    assert statuses(tenant) == {Status.COMPLETED: 20}, output
    assert service.stats["uploads_applied"] == 4
    assert service.stats["uploads_duplicate"] == 1  # the killed worker's message, resent under its ID
    resent = ComplianceReport.objects.filter(message_id=applied_id)
    assert resent.count() == 5 and all(r.attempts == 1 for r in resent)
    assert_each_pair_applied_once(simulator, tenant)
    assert "20 accepted by Intune in 4 messages" in output
