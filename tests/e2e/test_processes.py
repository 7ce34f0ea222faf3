"""Jamf Pro change → Intune through separate processes, as the portal really runs: the web server (runserver),
a django-q2 cluster and the simulator, sharing only a SQLite file (WAL). No Redis, and no schedules: the
safety-net sweeps are deleted, so every change must move on by events alone (issue 14, items 1 and 2).

Two bursts of webhooks are sent back to back, the second while the first one's drain is running: before,
the drain's "already queued" mark lived in each process's memory, the web process's mark outlived the
worker's drain, and the second burst stayed pending until the minute sweep (which here never comes).
"""

import json

import pytest

from bench.stack import Stack, wait_for

pytestmark = pytest.mark.slow
HANG_GUARD = 300  # seconds: a hang guard, not a timing assertion


@pytest.fixture
def stack(tmp_path):
    stack = Stack("sqlite:///%s" % (tmp_path / "portal.sqlite3"), tmp_path / "var")
    stack.prepare(seed=True, safety_nets=False)
    with stack.running():
        yield stack


def _webhooks(stack):
    return stack.query(
        "SELECT e.status, e.computer_id FROM devices_inventoryevent e JOIN portal_tenant t ON t.id = e.tenant_id "
        "WHERE t.slug = %s AND e.source = 'webhook'", ("contoso",))


def _reports(stack, computer_ids):
    marks = ",".join("%s" for _ in computer_ids)
    return stack.query(
        "SELECT r.status, r.payload, c.os_version, u.compliance_status, c.inventory_state "
        "FROM compliance_compliancereport r JOIN devices_computer c ON c.id = r.computer_id "
        "JOIN devices_useraccount u ON u.id = r.user_account_id "
        "WHERE r.latest AND r.kind = 'report' AND r.computer_id IN (%s)" % marks, tuple(computer_ids))


def test_webhook_bursts_reach_intune_through_separate_processes_without_redis(stack):
    first = stack.simulate_jamf("contoso", "--count", "15", "--kind", "inventory")
    second = stack.simulate_jamf("contoso", "--count", "15", "--kind", "inventory")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "202 15" in first.stdout and "202 15" in second.stdout

    def all_processed():
        rows = _webhooks(stack)
        return len(rows) == 30 and all(status == "processed" for status, _ in rows) and rows

    rows = wait_for(all_processed, HANG_GUARD, "every webhook event processed (%s)" % stack.var_dir)
    changed = sorted({computer_id for _, computer_id in rows if computer_id})
    assert changed

    def settled():
        # Every changed Mac's latest report completed at Intune, and holding the Mac as it is now: its inventory
        # with its current evaluation. (Completed alone is not enough: a drain that committed a new evaluation a
        # moment ago queues its report on the next debounced delivery, a couple of seconds later.)
        reports = _reports(stack, changed)
        if not reports or any(status != "completed" for status, *_ in reports):
            return False
        for _status, payload, os_version, compliance_status, state in reports:
            device, verdict = json.loads(payload) if isinstance(payload, str) else payload
            if (device["OsVersion"], device["State"], verdict["complianceStatus"]) != (
                    os_version, state, compliance_status):
                return False
        return reports

    wait_for(settled, HANG_GUARD, "every changed Mac's report completed at Intune, holding its current state")
    assert not stack.alive()
