"""manage.py rundemo: migrate, seed the demo, start the background processes and the web server.

What `make demo` runs. The background processes (the Microsoft/Jamf simulator and the django-q2
worker, as they land) are listed in ``DEMO_PROCESSES``; each is started as a child and stopped
when the server stops.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.management.commands.demo_data import DEMO_PASSWORD, MSP_USER, TENANTS

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")

# The Microsoft / Jamf Pro simulator of the demo: HTTPS on loopback, its CA bundle under var/simulator/.
SIMULATOR_HOST, SIMULATOR_PORT = "127.0.0.1", 8443
SIMULATOR_DIR = Path(settings.VAR_DIR) / "simulator"

# (label, manage.py arguments) of the processes that run beside the web server in the demo.
DEMO_PROCESSES = [
    ("simulator", ["runsimulator", "--host", SIMULATOR_HOST, "--port", str(SIMULATOR_PORT),
                   "--cert-dir", str(SIMULATOR_DIR)]),
    # django-q2: processes the Jamf webhooks, runs the scheduled pulls and the other background tasks.
    ("worker", ["qcluster"]),
]


def simulator_env():
    """The settings that point every Microsoft cloud at the demo's simulator (for the server and workers)."""
    base = "https://%s:%d" % (SIMULATOR_HOST, SIMULATOR_PORT)
    overrides = {cloud: {"login": base, "graph": base + "/graph"} for cloud in ("global", "usgov", "usgov_dod",
                                                                             "china")}
    return {"PORTAL_CLOUD_OVERRIDES": json.dumps(overrides), "PORTAL_CA_BUNDLE": str(SIMULATOR_DIR / "ca.pem")}


def wait_for_simulator(child, timeout=20):
    """Wait until the simulator has written its CA bundle and accepts connections; False if it did not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if (SIMULATOR_DIR / "ca.pem").exists():
            try:
                socket.create_connection((SIMULATOR_HOST, SIMULATOR_PORT), timeout=1).close()
                return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


DEMO_ENVIRONMENT_FILE = Path(settings.VAR_DIR) / "demo-environment.json"


def _signal_group(child, signum):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the children as Ctrl-C does


class Command(BaseCommand):
    help = "Run the whole demo on this machine: migrate, seed, start the background processes and the server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("demo_data", stdout=self.stdout)
        children = []
        env = dict(os.environ)
        env.update(simulator_env())  # the server and every worker talk to the simulator, trusting its CA
        # ...and so do manage.py commands run in another terminal while the demo runs (development only).
        DEMO_ENVIRONMENT_FILE.write_text(json.dumps(simulator_env()))
        signal.signal(signal.SIGTERM, _stop)
        (SIMULATOR_DIR / "ca.pem").unlink(missing_ok=True)  # a fresh one is written when it starts
        logs = Path(settings.VAR_DIR) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        for label, arguments in DEMO_PROCESSES:
            log = open(logs / ("%s.log" % label), "ab")  # noqa: SIM115 - closed with the child
            children.append((label, subprocess.Popen([sys.executable, MANAGE, *arguments], stdout=log, stderr=log,
                                                     env=env, start_new_session=True)))
            self.stdout.write("Started %s (log: %s)" % (label, logs / ("%s.log" % label)))
            if label == "simulator" and not wait_for_simulator(children[-1][1]):
                self.stderr.write("The simulator did not start on port %d; see its log." % SIMULATOR_PORT)
        base = "http://%s:%s" % (options["host"], options["port"])
        self.stdout.write(self.style.SUCCESS("\nThe portal is starting at %s/admin/" % base))
        self.stdout.write("  MSP staff:       %s / %s" % (MSP_USER, DEMO_PASSWORD))
        for slug, name, *_ in TENANTS:
            self.stdout.write("  %-16s %s-admin / %s" % (name + ":", slug, DEMO_PASSWORD))
        self.stdout.write("Commands such as `manage.py test_connection contoso` in another terminal use the")
        self.stdout.write("simulator too while the demo runs. Press Ctrl-C to stop.\n")
        server = subprocess.Popen(
            [sys.executable, MANAGE, "runserver", "%s:%s" % (options["host"], options["port"]), "--noreload"], env=env,
            start_new_session=True,
        )
        try:
            while server.poll() is None:
                for label, child in children:
                    if child.poll() is not None:
                        self.stderr.write("%s stopped (exit %s); see its log." % (label, child.returncode))
                        children.remove((label, child))
                        break
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave workers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            DEMO_ENVIRONMENT_FILE.unlink(missing_ok=True)
            # Each child leads its own process group (qcluster has worker processes): stop the groups.
            for _label, child in [("server", server), *children]:
                _signal_group(child, signal.SIGTERM)
            for _label, child in [("server", server), *children]:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _signal_group(child, signal.SIGKILL)
                    child.wait()
