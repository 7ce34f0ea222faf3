"""Benchmark: how fresh Intune's view is — a change in Jamf Pro to an upload accepted by Intune, and to "Completed".

    .venv/bin/python bench/freshness.py                                   # embedded: SQLite file, runserver
    .venv/bin/python bench/freshness.py --database-url postgres://postgres@127.0.0.1:5432/p14_freshness --web gunicorn

Starts the real processes (bench/stack.py): the simulator, the web server and a django-q2 cluster, sharing only
the database (no Redis), with the demo's tenants (~200 Macs) and the schedules on, as `make demo` runs them. The
simulated Intune keeps each message "Processing" for ``--processing-delay`` seconds. Then it changes Macs in the
simulated Jamf Pro (inventory updates: OS, FileVault, SIP, Company Portal, battery) and posts their webhooks to
the portal, timing each: first ``--spread`` changes one at a time ``--interval`` seconds apart, then ``--bursts``
bursts of ``--burst`` webhooks at once, ``--burst-gap`` seconds apart.

Reported, per phase and overall, p50 / p99 / max of:
- webhook → upload accepted by Intune (the report's ``sent_at``), for changes that changed what Intune is told
  (a battery change, say, changes no payload and makes no report): the first report of that Mac made after the
  webhook and before the same Mac's next webhook;
- Intune completed → "Completed" visible in the portal (``finished_at`` − (accepted + processing delay)).
Lost: webhooks not answered 202 or not processed, and changed Macs whose state at Intune (the simulator's
stored entities) is not the portal's current evaluation once everything settled. It must be 0.
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack, wait_for  # noqa: E402

SLUG = "contoso"


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def stats(values):
    if not values:
        return "n=0"
    return "n=%d p50 %.1f s, p99 %.1f s, max %.1f s (mean %.1f)" % (
        len(values), percentile(values, 50), percentile(values, 99), max(values), statistics.fmean(values))


def parse_time(value):
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromisoformat(str(value).replace(" ", "T").replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)  # SQLite keeps naive UTC


class Bench:
    def __init__(self, stack, processing_delay):
        self.stack = stack
        self.processing_delay = processing_delay
        self.session = requests.Session()
        self.ca = str(stack.var_dir / "simulator" / "ca.pem")
        self.sent = []  # (phase, jamf id, time sent (UTC), HTTP status)
        code = "from portal.models import Tenant; print(Tenant.objects.get(slug=%r).webhook_secret)" % SLUG
        self.secret = stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1]
        self.hook = "%s/hooks/jamf/%s/" % (stack.base_url, SLUG)

    def sim(self, path, payload):
        response = self.session.post(self.stack.simulator_url + path, json=payload, verify=self.ca, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else {}

    def change(self, count):
        return self.sim("/_sim/jamf/%s/change" % SLUG, {"count": count, "kind": "inventory"})["events"]

    def post(self, phase, body):
        at = datetime.datetime.now(datetime.UTC)
        try:
            status = self.session.post(self.hook, json=body, headers={"X-Webhook-Secret": self.secret},
                                       timeout=30).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        self.sent.append((phase, str(body["event"].get("jssID")), at, status))

    def settle(self, timeout):
        """Wait until no webhook is pending and no report is pending or accepted (Intune answered)."""
        def quiet():
            events = self.stack.query(
                "SELECT COUNT(*) FROM devices_inventoryevent WHERE status = 'pending' AND source = 'webhook'")[0][0]
            reports = self.stack.query(
                "SELECT COUNT(*) FROM compliance_compliancereport "
                "WHERE status IN ('pending', 'accepted')")[0][0]
            return events == 0 and reports == 0
        wait_for(quiet, timeout, "everything delivered and completed", every=1)

    def results(self):
        first_sent = {}
        for phase, jamf_id, at, _status in self.sent:
            first_sent.setdefault(jamf_id, (phase, at))
        rows = self.stack.query(
            "SELECT c.jamf_id, r.created_at, r.sent_at, r.finished_at, r.status FROM compliance_compliancereport r "
            "JOIN devices_computer c ON c.id = r.computer_id JOIN portal_tenant t ON t.id = r.tenant_id "
            "WHERE t.slug = %s AND r.kind = 'report' ORDER BY r.id", (SLUG,))
        processed = {}
        for jamf_id, received, done in self.stack.query(
                "SELECT c.jamf_id, e.received_at, e.processed_at FROM devices_inventoryevent e "
                "JOIN devices_computer c ON c.id = e.computer_id WHERE e.source = 'webhook' ORDER BY e.id"):
            processed.setdefault(jamf_id, []).append((parse_time(received), parse_time(done)))
        accepted, completed = {}, {}
        self.steps = {"webhook -> processed": [], "processed -> report queued": [], "queued -> accepted": []}
        next_send = {}  # (jamf id, time sent) -> when the same Mac's next webhook was sent
        for _phase, jamf_id, at, _status in self.sent:
            later = [t for _, j, t, _ in self.sent if j == jamf_id and t > at]
            next_send[(jamf_id, at)] = min(later) if later else None
        for phase, jamf_id, at, _status in self.sent:
            until = next_send[(jamf_id, at)]
            for rid_jamf, created, sent_at, finished, status in rows:
                created, sent_at, finished = parse_time(created), parse_time(sent_at), parse_time(finished)
                if rid_jamf != jamf_id or created is None or created < at or sent_at is None:
                    continue
                if until is not None and created >= until:
                    break  # made for the Mac's next change: this change changed nothing Intune is told
                accepted.setdefault(phase, []).append((sent_at - at).total_seconds())
                done = [d for r, d in processed.get(jamf_id, []) if r >= at and d is not None]
                if done:
                    self.steps["webhook -> processed"].append((done[0] - at).total_seconds())
                    self.steps["processed -> report queued"].append((created - done[0]).total_seconds())
                self.steps["queued -> accepted"].append((sent_at - created).total_seconds())
                if finished is not None and status == "completed":
                    done_at_intune = sent_at + datetime.timedelta(seconds=self.processing_delay)
                    completed.setdefault(phase, []).append(max(0.0, (finished - done_at_intune).total_seconds()))
                break  # the first report made after this webhook
        return accepted, completed

    def lost(self):
        refused = [s for s in self.sent if s[3] != 202]
        unprocessed = self.stack.query(
            "SELECT COUNT(*) FROM devices_inventoryevent WHERE source = 'webhook' AND status NOT IN "
            "('processed', 'ignored')")[0][0]
        guid = self.stack.query("SELECT entra_tenant_id FROM portal_tenant WHERE slug = %s", (SLUG,))[0][0]
        devices = self.session.get("%s/_sim/microsoft/devices" % self.stack.simulator_url,
                                   params={"tenant": str(uuid.UUID(str(guid)))}, verify=self.ca,
                                   timeout=30).json()["devices"]
        changed = sorted({jamf_id for _, jamf_id, _, _ in self.sent})
        marks = ",".join("%s" for _ in changed)
        pairs = self.stack.query(
            "SELECT c.jamf_id, COALESCE(NULLIF(u.entra_device_id, ''), c.entra_device_id), u.entra_user_id, "
            "c.os_version, c.inventory_state, u.compliance_status FROM devices_computer c "
            "JOIN devices_useraccount u ON u.computer_id = c.id JOIN portal_tenant t ON t.id = c.tenant_id "
            "WHERE t.slug = %%s AND u.entra_user_id <> '' AND u.compliance_status IS NOT NULL "
            "AND c.jamf_id IN (%s)" % marks, (SLUG, *changed))
        stale = []
        for jamf_id, device_id, user_id, os_version, state, compliance in pairs:
            if not device_id:
                continue
            held = devices.get(device_id.lower(), {}).get(user_id.lower(), {})
            inventory, verdict = held.get("inventory") or {}, held.get("compliance") or {}
            if (inventory.get("OsVersion"), inventory.get("State"), verdict.get("complianceStatus")) != (
                    os_version, state, compliance):
                stale.append(jamf_id)
        return refused, unprocessed, stale, len(pairs)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--web", choices=["runserver", "gunicorn"], default="runserver")
    parser.add_argument("--spread", type=int, default=40, help="changes sent one at a time")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between the spread changes")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst", type=int, default=50, help="webhooks per burst")
    parser.add_argument("--burst-gap", type=float, default=15.0)
    parser.add_argument("--processing-delay", type=float, default=5.0, help="seconds Intune keeps a message "
                        "Processing")
    parser.add_argument("--settle-timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="freshness-"))
    url = args.database_url or "sqlite:///%s" % (workdir / "portal.sqlite3")
    stack = Stack(url, workdir / "var", web=args.web)
    print("preparing %s (demo tenants, schedules on) in %s" % (url.split("@")[-1], workdir), flush=True)
    stack.prepare(seed=True, safety_nets=True)
    loads = [load()]
    with stack.running():
        bench = Bench(stack, args.processing_delay)
        bench.sim("/_sim/faults", {"processing_delay": args.processing_delay})
        # The seeded fleet's first reports go out before anything is measured.
        stack.manage("sync_intune", "--no-progress")
        bench.settle(args.settle_timeout)
        print("settled; load %s; sending" % load(), flush=True)
        started = time.monotonic()
        for _ in range(args.spread):
            tick = time.monotonic()
            for body in bench.change(1):
                bench.post("spread", body)
            time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
        loads.append(load())
        for n in range(args.bursts):
            if n:
                time.sleep(args.burst_gap)
            for body in bench.change(args.burst):
                bench.post("burst", body)
            loads.append(load())
        print("sent %d webhooks in %.0f s; waiting for Intune" % (len(bench.sent), time.monotonic() - started),
              flush=True)
        bench.settle(args.settle_timeout)
        loads.append(load())
        accepted, completed = bench.results()
        refused, unprocessed, stale, pairs = bench.lost()
        crashed = stack.alive()
    print()
    print("database: %s, web: %s, no Redis; Intune processing delay %.0f s" % (
        "PostgreSQL" if url.startswith("postgres") else "SQLite (WAL)", args.web, args.processing_delay))
    print("webhooks: %d (%d spread %.1f s apart, %d bursts of %d)" % (
        len(bench.sent), args.spread, args.interval, args.bursts, args.burst))
    for phase in ("spread", "burst"):
        print("  %-6s webhook -> upload accepted: %s" % (phase, stats(accepted.get(phase, []))))
        print("  %-6s Intune completed -> Completed visible: %s" % (phase, stats(completed.get(phase, []))))
    every_accepted = [v for values in accepted.values() for v in values]
    every_completed = [v for values in completed.values() for v in values]
    print("  all    webhook -> upload accepted: %s" % stats(every_accepted))
    print("  all    Intune completed -> Completed visible: %s" % stats(every_completed))
    for step, values in bench.steps.items():
        print("  step   %s: %s" % (step, stats(values)))
    print("lost: %d refused, %d not processed, %d of %d changed registered pairs not as the portal holds them%s" % (
        len(refused), unprocessed, len(stale), pairs, (": " + ", ".join(stale[:10])) if stale else ""))
    print("machine load (1/5/15 min) during the run: %s" % " | ".join(loads))
    if crashed:
        print("processes that stopped: %s (see %s)" % (crashed, workdir / "var"))
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    lost = len(refused) + unprocessed + len(stale)
    return 1 if lost or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
