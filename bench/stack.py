"""The whole portal as separate processes, as it runs for real: simulator, web server, django-q2 cluster.

Used by bench/freshness.py and the multi-process test (tests/e2e/test_processes.py). No Redis: the processes
share nothing but the database (a SQLite file in WAL mode, or PostgreSQL) and the simulator.
"""

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout, what, every=0.2):
    """Poll ``predicate`` until it is true; raise with ``what`` after ``timeout`` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("%s: not within %ss" % (what, timeout))


class Stack:
    """Processes of one portal installation. ``database_url``: sqlite:///<file> or postgres://…/<own db>."""

    def __init__(self, database_url, var_dir, web_port=None, simulator_port=None, web="runserver", workers=2):
        self.database_url = database_url
        self.var_dir = Path(var_dir)
        self.web_port = web_port or free_port()
        self.simulator_port = simulator_port or free_port()
        self.web = web
        self.children = []
        self.base_url = "http://127.0.0.1:%d" % self.web_port
        self.simulator_url = "https://127.0.0.1:%d" % self.simulator_port
        overrides = {cloud: {"login": self.simulator_url, "graph": self.simulator_url + "/graph"}
                     for cloud in ("global", "usgov", "usgov_dod", "china")}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS_URL", "Q_CLUSTER"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "portal.settings", "DATABASE_URL": database_url,
            "PORTAL_VAR_DIR": str(self.var_dir), "PORTAL_BASE_URL": self.base_url,
            "DEMO_SIMULATOR_URL": self.simulator_url, "PORTAL_CLOUD_OVERRIDES": json.dumps(overrides),
            "PORTAL_CA_BUNDLE": str(self.var_dir / "simulator" / "ca.pem"), "Q_WORKERS": str(workers),
            # The simulated Jamf Pro is on loopback: allow-listed as an operator allows an on-premises one.
            "PORTAL_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1", "PYTHONUNBUFFERED": "1",
        })
        self.env = env

    # -- set-up ------------------------------------------------------------------------------

    def manage(self, *args, check=True, **kwargs):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=check,
                              capture_output=True, text=True, **kwargs)

    def prepare(self, seed=True, safety_nets=True):
        """A fresh database, migrated; the demo tenants (~200 Macs) when ``seed``; without the schedules
        when not ``safety_nets`` (so only the event-driven path can move a change on)."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url.startswith("postgres"):
            import psycopg

            name = self.database_url.rsplit("/", 1)[1]
            with psycopg.connect(self.database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
                conn.execute('CREATE DATABASE "%s"' % name)
        self.manage("migrate", "-v0")
        if seed:
            self.manage("demo_data", "--simulator-url", self.simulator_url)
        if not safety_nets:
            self.manage("shell", "-c", "from django_q.models import Schedule; Schedule.objects.all().delete()")

    # -- processes ---------------------------------------------------------------------------

    def _start(self, label, args):
        log = open(self.var_dir / ("%s.log" % label), "ab")  # noqa: SIM115 - closed in stop()
        child = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                 start_new_session=True)
        self.children.append((label, child, log))
        return child

    def _listening(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def start(self):
        (self.var_dir / "simulator").mkdir(parents=True, exist_ok=True)
        self._start("simulator", ["manage.py", "runsimulator", "--port", str(self.simulator_port),
                                  "--cert-dir", str(self.var_dir / "simulator")])
        wait_for(lambda: (self.var_dir / "simulator" / "ca.pem").exists() and self._listening(self.simulator_port),
                 60, "the simulator starts")
        self._start("worker", ["manage.py", "qcluster"])
        if self.web == "gunicorn":
            self._start("web", ["-m", "gunicorn", "portal.wsgi", "--bind", "127.0.0.1:%d" % self.web_port,
                                "--workers", "2", "--threads", "4"])
        else:
            self._start("web", ["manage.py", "runserver", "127.0.0.1:%d" % self.web_port, "--noreload"])
        wait_for(lambda: self._listening(self.web_port), 60, "the web server starts")
        return self

    def stop(self):
        for _label, child, _log in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
        for _label, child, log in self.children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            log.close()
        self.children = []

    @contextlib.contextmanager
    def running(self):
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def alive(self):
        """Labels of children that exited (they should not)."""
        return [label for label, child, _ in self.children if child.poll() is not None]

    # -- reading the shared database ----------------------------------------------------------

    def query(self, sql, params=()):
        """Rows of a read-only SQL query against the stack's database (``%s`` placeholders)."""
        if self.database_url.startswith("postgres"):
            import psycopg

            with psycopg.connect(self.database_url) as conn:
                return conn.execute(sql, params).fetchall()
        path = self.database_url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path, timeout=30)
        try:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()

    def simulate_jamf(self, slug, *args):
        """``manage.py simulate_jamf`` against this stack; returns the completed process (check it)."""
        return self.manage("simulate_jamf", slug, "--portal-url", self.base_url, *args, check=False)
