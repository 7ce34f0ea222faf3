"""Helpers shared by the benchmark scripts."""

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(env, url):
    """Drop and re-create the PostgreSQL database of ``url`` (SQLite files start empty), then migrate."""
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "%s"' % name)
            conn.execute('CREATE DATABASE "%s"' % name)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def process_cpu(pid):
    """CPU seconds (user + system) the process ``pid`` has used, from /proc (a simulator, a database backend)."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """CPU seconds the whole machine has been busy (every core, from /proc/stat: all but idle and iowait). On a
    quiet machine, what a run used beyond its own processes' CPU is the database's (its backends come and go with
    their connections, so their own counters would lose what the ended ones used)."""
    with open("/proc/stat") as fh:
        fields = [int(value) for value in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loadavg():
    """The machine's 1-, 5- and 15-minute load averages, as text (the benchmarks print it with each figure)."""
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def start_simulator(env, work, new_session=False):
    """Start ``manage.py runsimulator`` on a free port; returns (process, base URL, CA bundle path).

    ``new_session`` puts it in its own process group, for callers that stop whole groups.
    """
    log = open(work / "simulator.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runsimulator", "--port", "0", "--no-seed", "--cert-dir", str(work / "sim")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=new_session,
    )
    base = ca = None
    for line in proc.stdout:
        match = re.search(r"listening on (https://\S+)", line)
        if match:
            base = match.group(1)
        if line.startswith("CA bundle:"):
            ca = line.split(":", 1)[1].strip()
        if base and ca:
            break
    if not (base and ca):
        proc.kill()
        raise SystemExit("the simulator did not start; see %s" % (work / "simulator.log"))
    return proc, base, ca


def wait_for_port(port, timeout=30, what="nothing"):
    """Wait until something listens on 127.0.0.1:``port``; exit naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("%s did not start listening on port %d" % (what, port))


def send_webhook(port, slug, body, secret, timeout=10):
    """POST one Jamf Pro webhook body to the portal on 127.0.0.1:``port``; the HTTP status, or 0 on a socket error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/hooks/jamf/%s/" % slug, body=body,
                     headers={"Content-Type": "application/json", "X-Webhook-Secret": secret})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()
