"""Benchmark: Jamf Pro webhook intake against gunicorn (2 workers) on PostgreSQL, on loopback.

    .venv/bin/python bench/webhooks.py [--rate 500] [--duration 20] [--database-url postgres://postgres@127.0.0.1:5432/bench_webhooks]
    .venv/bin/python bench/webhooks.py --max --concurrency 16 --duration 20   # closed loop: the ceiling

Migrates a fresh database, creates a tenant with a webhook secret, starts gunicorn with 2 sync
workers, then sends real ComputerCheckIn webhooks (the hot path: every Mac every 15 minutes).
Open loop by default: requests leave on a fixed schedule at ``--rate`` per second and latency is
measured from the scheduled time, so a stall is not hidden (no coordinated omission). ``--max``
runs a closed loop with ``--concurrency`` clients instead, for the highest sustained rate.
Reports requests/s, p50/p90/p99/max latency, errors, and checks that the InventoryEvent rows
stored equal the 202 answers (nothing lost). No worker runs: intake only.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

SLUG = "bench"
SECRET = "bench-webhook-secret-0123456789abcdef"


def fresh_database(url, env):
    common.fresh_database(env, url)
    setup = (
        "from portal.models import Tenant\n"
        "Tenant.objects.create(slug=%r, name='Bench', webhook_secret=%r)\n" % (SLUG, SECRET)
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True)


def count_events(env):
    code = "from devices.models import InventoryEvent; print(InventoryEvent.objects.filter(tenant__slug=%r).count())"
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code % SLUG], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1])


def bodies(n=500):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from devices.jamf.samples import make_record
    from simulator.jamf import webhook_body

    now = datetime.datetime.now(datetime.UTC)
    return [json.dumps(webhook_body("ComputerCheckIn", make_record(i + 1, SLUG), now)).encode() for i in range(n)]


def client_process(port, payloads, start_at, duration, rate, threads, closed, results):
    """One load-generator process: ``threads`` threads, each on its own fixed schedule (or closed loop)."""
    latencies, statuses = [], {}
    lock = threading.Lock()

    def worker(index):
        rng = random.Random(index)
        local_lat, local_status = [], {}
        interval = threads / rate if rate else 0
        next_at = start_at + rng.random() * interval
        end = start_at + duration
        while True:
            if closed:
                scheduled = time.monotonic()
                if scheduled >= end:
                    break
            else:
                scheduled = next_at
                if scheduled >= end:
                    break
                delay = scheduled - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
            status = common.send_webhook(port, SLUG, payloads[rng.randrange(len(payloads))], SECRET)
            local_lat.append(time.monotonic() - scheduled)
            local_status[status] = local_status.get(status, 0) + 1
        with lock:
            latencies.extend(local_lat)
            for key, value in local_status.items():
                statuses[key] = statuses.get(key, 0) + value

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((latencies, statuses))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_webhooks")
    parser.add_argument("--rate", type=float, default=500, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--max", action="store_true", help="closed loop: as fast as --concurrency clients go")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=16,
                        help="threads per gunicorn worker (gthread); 1 = the sync worker class")
    args = parser.parse_args()

    env = dict(os.environ, DATABASE_URL=args.database_url, DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="false",
               LOG_LEVEL="WARNING", PORTAL_VAR_DIR=str(ROOT / "var" / "bench"))
    (ROOT / "var" / "bench" / "static").mkdir(parents=True, exist_ok=True)
    fresh_database(args.database_url, env)
    payloads = bodies()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi", "--workers", str(args.workers),
         "--threads", str(args.threads), "--worker-class", "gthread" if args.threads > 1 else "sync",
         "--bind", "127.0.0.1:%d" % args.port, "--log-level", "warning", "--backlog", "2048"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        common.wait_for_port(args.port, what="gunicorn")
        for body in payloads[:20]:  # warm-up: connections, imports (not counted)
            common.send_webhook(args.port, SLUG, body, SECRET)
        before = count_events(env)
        threads = max(1, args.concurrency // args.processes) if args.max else max(1, int(args.rate // 25))
        per_process_rate = None if args.max else args.rate / args.processes
        results = multiprocessing.Queue()
        start_at = time.monotonic() + 1.0
        procs = [
            multiprocessing.Process(target=client_process, args=(
                args.port, payloads, start_at, args.duration, per_process_rate, threads, args.max, results))
            for _ in range(args.processes)
        ]
        for proc in procs:
            proc.start()
        latencies, statuses = [], {}
        for _ in procs:
            lat, st = results.get()
            latencies.extend(lat)
            for key, value in st.items():
                statuses[key] = statuses.get(key, 0) + value
        for proc in procs:
            proc.join()
        after = count_events(env)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    sent = len(latencies)
    accepted = statuses.get(202, 0)
    stored = after - before
    print("mode: %s" % ("closed loop, %d clients" % args.concurrency if args.max else "open loop at %g/s" % args.rate))
    print("sent %d in %.0f s: %.0f requests/s; statuses %s" % (sent, args.duration, sent / args.duration, statuses))
    print("latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f" % tuple(
        1000 * percentile(latencies, p) for p in (50, 90, 99, 100)))
    print("stored %d events for %d accepted (%s)" % (stored, accepted, "nothing lost" if stored == accepted == sent
                                                     else "MISMATCH"))


if __name__ == "__main__":
    main()
