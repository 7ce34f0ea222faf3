"""Benchmark: a full Jamf Pro pull of N Macs from the simulator into a fresh database.

    .venv/bin/python bench/jamf_pull.py --n 100000 [--database-url postgres://postgres@127.0.0.1:5432/bench_pull]

Starts the simulator (``manage.py runsimulator``) in its own process with a Jamf Pro of N Macs
(every section the portal asks for, 1 to 3 local users each), then times ``manage.py jamf_pull
--full`` in a child process three times: the first pull (all created), a second full pull (all
unchanged, and the reconcile), and an incremental pull after 100 Macs changed. Reports wall time,
computers per second and the child's peak memory. The pages are fetched over HTTPS on loopback, 5
at a time, 500 records a page (the client's defaults).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, loadavg, process_cpu  # noqa: E402

SLUG = "bench"

CHILD = """
import resource, sys, time, django
django.setup()
from devices.pull import pull_inventory
from portal.models import Tenant
tenant = Tenant.objects.get(slug=%r)
t = time.perf_counter()
result = pull_inventory(tenant, full=sys.argv[1] == "full")
elapsed = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
print("RESULT", elapsed, usage.ru_maxrss, result.error or "ok",
      result.fetched, result.created, result.updated, result.unchanged, result.unmanaged, result.pages,
      usage.ru_utime + usage.ru_stime)
""" % SLUG


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_pull")
    parser.add_argument("--port", type=int, default=8768)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="false", LOG_LEVEL="WARNING",
               PORTAL_VAR_DIR=str(work), PORTAL_CA_BUNDLE=str(work / "sim" / "ca.pem"),
               PORTAL_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")  # the simulated Jamf Pro is on loopback
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    fresh_database(env, args.database_url)
    base = "https://127.0.0.1:%d" % args.port
    setup = (
        "from portal.models import Tenant\n"
        "from simulator.jamf import credentials_for\n"
        "cid, secret = credentials_for(%r)\n"
        "Tenant.objects.create(slug=%r, name='Bench', jamf_url=%r, jamf_client_id=cid, jamf_client_secret=secret)\n"
        % (SLUG, SLUG, base + "/jamf/" + SLUG)
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True)
    sim = subprocess.Popen(
        [sys.executable, "manage.py", "runsimulator", "--no-seed", "--port", str(args.port), "--cert-dir",
         str(work / "sim")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (work / "sim" / "ca.pem").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        ca = str(work / "sim" / "ca.pem")
        control = base + "/_sim/jamf/%s/" % SLUG
        requests.post(control + "configure", json={"count": args.n}, verify=ca, timeout=30).raise_for_status()
        print("N = %d Macs in the simulated Jamf Pro   load average before: %s" % (args.n, loadavg()))
        for label, mode in [("first full pull (all created)", "full"), ("second full pull (unchanged)", "full"),
                            ("incremental pull after 100 changed", "incremental")]:
            if mode == "incremental":
                requests.post(control + "change", json={"count": 100, "kind": "inventory", "seed": 1}, verify=ca,
                              timeout=60).raise_for_status()
            sim_cpu = process_cpu(sim.pid)
            out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout
            sim_cpu = process_cpu(sim.pid) - sim_cpu
            line = [x for x in out.splitlines() if x.startswith("RESULT")][-1].split()
            elapsed, rss_kb, status = float(line[1]), int(line[2]), line[3]
            fetched, created, updated, unchanged, unmanaged, pages = map(int, line[4:10])
            print("%-38s %7.1f s  %6.0f computers/s  fetched %d in %d pages (created %d, updated %d, unchanged "
                  "%d, unmanaged %d)  peak RSS %d MB  CPU: portal %.1f s, simulator %.1f s  %s  load %s" % (
                      label, elapsed, fetched / elapsed if elapsed else 0, fetched, pages, created, updated,
                      unchanged, unmanaged, rss_kb // 1024, float(line[10]), sim_cpu, status, loadavg()))
        state = requests.get(base + "/_sim/state", verify=ca, timeout=30).json()
        print("simulator: max concurrent inventory requests %s" % json.dumps(
            state["services"]["JamfService"]["max_in_flight"]))
    finally:
        os.killpg(sim.pid, signal.SIGTERM)
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
