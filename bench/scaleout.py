"""Benchmark: more qcluster processes against one PostgreSQL, under Intune faults: throughput and exactly-once.

    .venv/bin/python bench/scaleout.py [--tenants 4] [--macs 1500] [--workers 1,2,4] [--fault-rate 0.05]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_scaleout] [--web-ports 8171,8172]

Set-up (not timed): a fresh database; the simulator in its own process; ``--tenants`` tenants of ``--macs``
registered Macs (one Entra-registered user each) with a webhook secret and Intune enabled; an initial
evaluation and delivery so every pair starts accepted; two gunicorn processes (1 worker, 8 threads each)
taking Jamf Pro webhooks, as two web machines would.

Then one round per worker count W (1, 2, 4 by default):

1. the simulator injects faults on the Intune partner service: ``--fault-rate`` each of 503 answers, 429
   with Retry-After, connections dropped before the message is applied, and answers dropped after it was
   applied (the portal must resend under the same message ID, and Intune must not apply it twice);
   messages carry ``--batch-size`` devices (25), so a round has enough of them to meet every kind of
   fault; backoff is shortened to 1-5 s;
2. W ``manage.py qcluster`` processes start (1 worker each: W machines' worth of workers), after a
   ``VACUUM (ANALYZE)`` of the database (not timed; autovacuum's work, off on the team's server; ``--no-vacuum``
   skips it);
3. every Mac of every tenant gets a ComputerInventoryCompleted webhook with a new macOS version, sent to
   the two web processes alternately (the intake is timed too);
4. the webhook events flow through whatever the code does (drain, evaluation, outbox, delivery); the
   benchmark also queues ``deliver_task`` for each tenant every 2 s, as the schedule would every minute,
   so the round does not wait for the minute tick (extra runs are harmless: claims SKIP LOCKED);
5. the round ends when every pair's latest report is from this round and accepted (or completed), and
   nothing is pending. Throughput = changes / (first webhook -> last acceptance).

After each round the clusters are stopped (SIGTERM, SIGKILL after 20 s): a task one of them had taken and a lane
one of them held are returned at once (not timed), as django-q2's ``retry`` and ``portal.lanes.STALE_AFTER`` would
after 6 minutes, which would otherwise stall a tenant of the next round.

Checks per round (the script exits non-zero if one fails):

- every webhook answered 202 was stored, and every stored event was processed;
- exactly once: for every (device, user) pair, the number of entities the simulator applied for it in
  the round equals 2 x the portal's reports of that pair sent in the round (a message applied twice, or
  a report sent under two message IDs, would count more; a lost one less), and the simulator's stored
  inventory carries the round's macOS version for every pair (none lost);
- the simulator's own counters: messages applied = distinct message IDs of the round's reports; resends
  of an applied message (after a dropped answer) were acknowledged as duplicates, not applied.
"""

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, loadavg, send_webhook, start_simulator, wait_for_port  # noqa: E402

SECRET = "bench-secret~0123456789abcdef"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"

SEED = r"""
import datetime, json, sys, uuid, django
django.setup()
from django.utils import timezone
from devices.models import Computer, UserAccount
from portal.models import ClientSecret, Tenant

tenants, n, secret, webhook_secret = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
now = timezone.now()
for slug, info in tenants.items():
    tenant = Tenant.objects.create(name=slug, slug=slug, entra_tenant=info["name"], client_id=info["client_id"],
                                   use_own_app=True,  # its own app and secret, not the partner application
                                   entra_tenant_id=info["id"], webhook_secret=webhook_secret)
    ClientSecret.objects.create(tenant=tenant, value=secret, expires_at=now + datetime.timedelta(days=90))
    Tenant.objects.filter(pk=tenant.pk).update(intune_enabled=True)  # the simulator is provisioned-agnostic
    macs = Computer.objects.bulk_create([Computer(
        tenant=tenant, jamf_id=str(i + 1), udid=str(uuid.uuid4()).upper(), serial_number="C02%s%06d" % (slug[:3], i),
        name="%s Mac %d" % (slug, i), last_check_in=now, last_inventory_update=now - datetime.timedelta(hours=2),
        entra_device_id=str(uuid.uuid4()), company_portal_version="5.2404.0",
        company_portal_seen_at=now - datetime.timedelta(days=30), os_name="macOS", os_version="15.0",
        os_build="24A335", filevault_state="ENCRYPTED", sip="ENABLED",
        gatekeeper="APP_STORE_AND_IDENTIFIED_DEVELOPERS", auto_login_disabled=True, model="MacBook Pro",
        model_identifier="Mac15,3", make="Apple", platform="Mac",
    ) for i in range(n)])
    UserAccount.objects.bulk_create([UserAccount(
        computer=m, username="user", full_name="Bench User", email="user%s@%s.example" % (m.jamf_id, slug),
        entra_user_id=str(uuid.uuid4()), entra_device_id=m.entra_device_id, entra_state="ACTIVATED",
        password_min_length=12,
    ) for m in macs])
print("SEEDED")
"""

# The initial state, not timed: every pair evaluated, reported and accepted.
PRIME = r"""
import django
django.setup()
from compliance.delivery import deliver_tenant, due
from compliance.evaluation import evaluate_tenant
from compliance.outbox import queue_reports
from portal.models import Tenant
for tenant in Tenant.objects.all():
    evaluate_tenant(tenant.pk)
    queue_reports(tenant.pk)
    while due(tenant.pk).exists():
        deliver_tenant(tenant.pk, budget=600)
print("PRIMED")
"""

def round_state(start):
    """Where the round stands, read in this process: pairs, done, open and failed reports, events. (A Python
    started every second to read it, as before, used about half a core of the two the round runs on.)"""
    from django.db.models import Count, Max, Q

    from compliance.models import ComplianceReport
    from devices.models import InventoryEvent

    reports = ComplianceReport.objects.filter(kind="report")
    latest = reports.filter(latest=True).aggregate(
        pairs=Count("id"), done=Count("id", filter=Q(id__gt=start, status__in=["accepted", "completed"])))
    return {
        "pairs": latest["pairs"], "done": latest["done"],
        "open": reports.filter(status="pending").count(),
        "failed": reports.filter(id__gt=start, status="failed").count(),
        "events_pending": InventoryEvent.objects.filter(status__in=["pending", "failed"]).count(),
        "events": InventoryEvent.objects.filter(source="webhook").count(),
        "max_id": reports.aggregate(m=Max("id"))["m"] or 0,
    }

KICK = r"""
import sys, time, django
django.setup()
from compliance.tasks import queue_deliver
from portal.models import Tenant
ids = list(Tenant.objects.values_list("pk", flat=True))
while True:
    for pk in ids:
        queue_deliver(pk)
    time.sleep(2)
"""

ROUND_REPORTS = r"""
import json, sys, django
django.setup()
from compliance.models import ComplianceReport
# The round's reports that were sent: every report has its message from the start, so a report superseded before its
# message was ever claimed (a pair that changed twice before delivery) is left out; a claimed one is never superseded.
rows = ComplianceReport.objects.filter(kind="report", id__gt=int(sys.argv[1])).exclude(status="superseded")
out = {}
for tenant, device, user, status, message in rows.values_list(
        "tenant__slug", "entra_device_id", "entra_user_id", "status", "message_id"):
    out.setdefault(tenant, []).append([device.lower(), user.lower(), status, str(message)])
print(json.dumps(out))
"""


RECOVER = r"""
import datetime, django
django.setup()
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from portal.models import Lane

# The round's clusters are stopped: a task one of them had taken (run or prefetched) is handed out again, and a lane
# one of them held is free. django-q2 does both itself, after Q_CLUSTER["retry"] and lanes.STALE_AFTER (6 min).
now = timezone.now()
tasks = OrmQ.objects.filter(lock__gt=now - datetime.timedelta(seconds=Conf.RETRY)).filter(lock__lte=now).update(
    lock=now - datetime.timedelta(seconds=Conf.RETRY + 1))
lanes = Lane.objects.filter(Q(running_since__isnull=False) | Q(due_at__lte=now)).update(
    running_since=None, due_at=None)
print("returned %d tasks, freed %d lanes" % (tasks, lanes))
"""


def worker_counts(text):
    """``--workers``: "1,2,4" as [1, 2, 4]; anything else is refused before any set-up starts."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected positive whole numbers separated by commas, such as 1,2,4; got %r"
                                         % text)
    return counts


def vacuum(url):
    """``VACUUM (ANALYZE)`` the database (not timed): what autovacuum does between the rounds in production. It
    is off on the team's PostgreSQL, so without this each round would meet the dead rows and stale statistics
    of the rounds before it, and the last round (the most processes) would pay for all of them."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def run(script, env, *args):
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return result.stdout.strip().splitlines()[-1]


class Sim:
    def __init__(self, base, ca):
        import requests

        self.base, self.ca, self.session = base, ca, requests.Session()

    def get(self, path, **params):
        # verify per request: REQUESTS_CA_BUNDLE in the environment would override a Session's own
        answer = self.session.get(self.base + path, params=params, timeout=60, verify=self.ca)
        answer.raise_for_status()
        return answer.json()

    def post(self, path, body):
        answer = self.session.post(self.base + path, json=body, timeout=60, verify=self.ca)
        answer.raise_for_status()
        return answer.json()

    def devices(self, tenant_id):
        """{(device, user): (entities applied, OsVersion stored)} of one simulated tenant."""
        out = {}
        for device, users in self.get("/_sim/microsoft/devices", tenant=tenant_id)["devices"].items():
            for user, record in users.items():
                inventory = record.get("inventory") or {}
                out[(device, user)] = (record["messages"], inventory.get("OsVersion"))
        return out

    def stats(self):
        state = self.get("/_sim/state")
        return dict(state["services"]["MicrosoftService"]["stats"]), dict(state.get("counts", {}))


def stop(proc, grace=20):
    """SIGTERM to a process group, SIGKILL after ``grace`` seconds (django-q2 waits for its task queue)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def webhooks(slugs, macs, version, stamp):
    from simulator.jamf import webhook_body

    bodies = []
    for slug in slugs:
        for i in range(macs):
            record = {"id": str(i + 1), "udid": "", "general": {"name": "%s Mac %d" % (slug, i)},
                      "hardware": {"serialNumber": "C02%s%06d" % (slug[:3], i)},
                      "operatingSystem": {"version": version, "build": "24B%d" % (i % 90)}}
            body = webhook_body("ComputerInventoryCompleted", record, stamp)
            body["event"].pop("udid", None)  # the Mac is known by its Jamf ID
            bodies.append((slug, json.dumps(body).encode()))
    return bodies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--macs", type=int, default=1500, help="Macs per tenant")
    parser.add_argument("--workers", default=[1, 2, 4], type=worker_counts,
                        help="qcluster processes per round, comma-separated (default 1,2,4)")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="each of 503, 429 and dropped answers")
    parser.add_argument("--batch-size", type=int, default=25, help="devices per DataUploadMessage")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_scaleout")
    parser.add_argument("--web-ports", default="8171,8172")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a round may take")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="do not VACUUM (ANALYZE) the database before each round (autovacuum's work)")
    args = parser.parse_args()
    ports = [int(p) for p in args.web_ports.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    env = dict(os.environ, DATABASE_URL=args.database_url, PORTAL_VAR_DIR=str(work / "var"), LOG_LEVEL="WARNING",
               DEBUG="false", DJANGO_SETTINGS_MODULE="portal.settings", Q_WORKERS="1",
               INTUNE_BACKOFF_BASE="1", INTUNE_BACKOFF_MAX="5", INTUNE_DELIVERY_MAX_RETRY_WAIT="2",
               INTUNE_BATCH_SIZE=str(args.batch_size))
    (work / "var" / "static").mkdir(parents=True)
    os.environ.update(env)
    import django

    django.setup()
    fresh_database(env, args.database_url)
    sim_proc, base, ca = start_simulator(env, work, new_session=True)
    sim = Sim(base, ca)
    overrides = {c: {"login": base, "graph": base + "/graph"} for c in ("global", "usgov", "usgov_dod", "china")}
    env.update(PORTAL_CLOUD_OVERRIDES=json.dumps(overrides), PORTAL_CA_BUNDLE=ca,
               PORTAL_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")  # the simulated Jamf Pro is on loopback
    procs = []
    kicker = None
    clusters = []
    failures = []
    try:
        tenants = {}
        for t in range(args.tenants):
            slug = "t%02d" % t
            info = {"name": "%s.onmicrosoft.com" % slug, "client_id": str(uuid.uuid4())}
            info["id"] = sim.post("/_sim/microsoft/tenants", {
                "name": info["name"], "client_id": info["client_id"], "secrets": [SECRET]})["id"]
            tenants[slug] = info
        started = time.perf_counter()
        print(run(SEED, env, json.dumps(tenants), args.macs, SECRET, WEBHOOK_SECRET), end=" ")
        print(run(PRIME, env), "%d tenants x %d Macs in %.0f s (not timed)" % (
            args.tenants, args.macs, time.perf_counter() - started))
        for port in ports:
            procs.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi", "--workers", "1", "--threads", "8",
                 "--worker-class", "gthread", "--bind", "127.0.0.1:%d" % port, "--log-level", "warning"],
                cwd=ROOT, env=env, start_new_session=True))
        for port in ports:
            wait_for_port(port, timeout=60, what="gunicorn")
        changes = args.tenants * args.macs
        results = []
        for round_no, workers in enumerate(args.workers):
            version = "15.%d" % (round_no + 1)
            if args.database_url.startswith("postgres") and not args.no_vacuum:
                vacuum(args.database_url)
            start_id = round_state(0)["max_id"]
            before_devices = {slug: sim.devices(info["id"]) for slug, info in tenants.items()}
            stats_before, counts_before = sim.stats()
            events_before = round_state(start_id)["events"]
            sim.post("/_sim/faults", {"error_rate": args.fault_rate, "throttle_rate": args.fault_rate,
                                      "drop_rate": args.fault_rate, "drop_answer_rate": args.fault_rate,
                                      "retry_after": 1, "paths": ["/intune/"]})
            load_before = loadavg()
            clusters = [subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                         stdout=subprocess.DEVNULL, stderr=open(work / ("qcluster-%d-%d.log" % (  # noqa: SIM115
                                             round_no, i)), "w"), start_new_session=True) for i in range(workers)]
            time.sleep(3)  # the clusters' start-up is not the round's
            bodies = webhooks(list(tenants), args.macs, version, None)
            t0 = time.perf_counter()
            kicker = subprocess.Popen([sys.executable, "-c", KICK], cwd=ROOT, env=env, start_new_session=True)
            statuses = {}
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                def post(item):
                    index, (slug, body) = item
                    return send_webhook(ports[index % len(ports)], slug, body, WEBHOOK_SECRET, timeout=30)

                for status in pool.map(post, enumerate(bodies)):
                    statuses[status] = statuses.get(status, 0) + 1
            intake = time.perf_counter() - t0
            deadline = time.monotonic() + args.timeout
            drained = None
            while True:
                state = round_state(start_id)
                if drained is None and not state["events_pending"]:
                    drained = time.perf_counter() - t0
                if state["done"] == state["pairs"] and not state["open"] and not state["events_pending"]:
                    break
                if time.monotonic() > deadline:
                    failures.append("round with %d workers timed out: %s" % (workers, state))
                    break
                time.sleep(1)
            elapsed = time.perf_counter() - t0
            load_after = loadavg()
            stop(kicker)
            kicker = None
            for cluster in clusters:
                stop(cluster)
            recovered = run(RECOVER, env).strip()
            sim.post("/_sim/faults", {"error_rate": 0, "throttle_rate": 0, "drop_rate": 0, "drop_answer_rate": 0,
                                      "paths": []})
            stats_after, counts_after = sim.stats()

            # -- the checks ----------------------------------------------------------------------
            sent = json.loads(run(ROUND_REPORTS, env, start_id))
            stored = state["events"] - events_before
            if statuses.get(202, 0) != len(bodies) or stored != len(bodies):
                failures.append("webhooks: %s answered, %d stored for %d sent" % (statuses, stored, len(bodies)))
            messages = set()
            reports = 0
            for slug, info in tenants.items():
                per_pair = {}
                for device, user, status, message in sent.get(slug, []):
                    if status not in ("accepted", "completed"):
                        failures.append("%s: a report of %s/%s ended %s" % (slug, device, user, status))
                    per_pair[(device, user)] = per_pair.get((device, user), 0) + 1
                    messages.add(message)
                    reports += 1
                after = sim.devices(info["id"])
                for pair, (applied, os_version) in after.items():
                    delta = applied - before_devices[slug].get(pair, (0, None))[0]
                    if delta != 2 * per_pair.get(pair, 0):
                        failures.append("%s %s: %d entities applied for %d reports" % (
                            slug, pair, delta, per_pair.get(pair, 0)))
                    if os_version != version:
                        failures.append("%s %s: Intune holds macOS %s, not %s" % (slug, pair, os_version, version))
                if len(after) != args.macs:
                    failures.append("%s: Intune holds %d pairs, not %d" % (slug, len(after), args.macs))
            applied = stats_after["uploads_applied"] - stats_before["uploads_applied"]
            duplicates = stats_after["uploads_duplicate"] - stats_before["uploads_duplicate"]
            if applied != len(messages):
                failures.append("the simulator applied %d messages; the portal sent %d" % (applied, len(messages)))
            faults = {k.split(":", 1)[1]: counts_after.get(k, 0) - counts_before.get(k, 0)
                      for k in counts_after if k.startswith("fault:")}
            results.append((workers, elapsed, intake, reports, len(messages), duplicates, faults, load_before,
                            load_after))
            print("%d qcluster process(es): %d changes applied in %.1f s = %.0f changes/s (webhook intake %.1f s, "
                  "every event processed at %.1f s; %d reports in %d messages, %d resends acknowledged as duplicates, "
                  "faults injected %s; load before %s, after %s; after stopping the clusters: %s)" % (
                      workers, changes, elapsed, changes / elapsed, intake, drained or elapsed, reports,
                      len(messages), duplicates, faults, load_before, load_after, recovered), flush=True)
    finally:
        for proc in [kicker, *clusters, *procs, sim_proc]:
            if proc is not None:
                stop(proc)
    print("workers  seconds  changes/s  reports  messages  duplicates")
    for workers, elapsed, _intake, reports, messages, duplicates, *_ in results:
        print("%7d  %7.1f  %9.0f  %7d  %8d  %10d" % (workers, elapsed, changes / elapsed, reports, messages,
                                                     duplicates))
    if failures:
        print("FAILED CHECKS (%d):" % len(failures))
        for failure in failures[:50]:
            print("  " + failure)
        raise SystemExit(1)
    print("every check passed: each change applied exactly once, none lost, with %s qcluster processes"
          % ",".join(map(str, args.workers)))


if __name__ == "__main__":
    main()
