"""manage.py rundemo: migrate, seed the demo, start the background processes and the web server.

What `make demo` runs. The background processes (the Microsoft/Jamf simulator and the django-q2
worker) are listed in ``DEMO_PROCESSES``; each is started as a child and stopped when the server
stops. Every URL follows ``--host`` / ``--port``: ``PORTAL_BASE_URL`` (webhook URL, the landing URLs
sent to Intune, the consent redirect) is set for the server and the worker and recorded in
var/demo-environment.json with the simulator's address, which is ``--simulator-port`` or a free port
(8443 when it is free), so other terminals' commands reach both. The sign-in page offers "Sign in with
Microsoft" against the simulator's Entra ID (simulator/oidc.py), as the demo MSP staff member's work account.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.management.commands.demo_data import DEMO_PASSWORD, MSP_EMAIL, MSP_USER, TENANTS

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")

# The Microsoft / Jamf Pro simulator of the demo: HTTPS on loopback, its CA bundle under var/simulator/.
SIMULATOR_HOST, PREFERRED_SIMULATOR_PORT = "127.0.0.1", 8443
SIMULATOR_DIR = Path(settings.VAR_DIR) / "simulator"


def demo_processes(simulator_port):
    """(label, manage.py arguments) of the processes that run beside the web server in the demo."""
    return [
        ("simulator", ["runsimulator", "--host", SIMULATOR_HOST, "--port", str(simulator_port),
                       "--cert-dir", str(SIMULATOR_DIR)]),
        # django-q2: processes the Jamf webhooks, delivers to Intune, runs the scheduled safety nets.
        ("worker", ["qcluster"]),
    ]


WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - recognised, to build a loopback URL for them


def port_is_free(host, port):
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_simulator_port(wanted=None):
    """``wanted`` when given (it must be free), else 8443 when free, else a port the system picks."""
    if wanted:
        if not port_is_free(SIMULATOR_HOST, wanted):
            raise CommandError("The simulator's port %d is in use: pick another with SIMULATOR_PORT=… "
                               "(make demo) or --simulator-port." % wanted)
        return wanted
    if port_is_free(SIMULATOR_HOST, PREFERRED_SIMULATOR_PORT):
        return PREFERRED_SIMULATOR_PORT
    with socket.socket() as probe:
        probe.bind((SIMULATOR_HOST, 0))
        return probe.getsockname()[1]


def simulator_url(port):
    return "https://%s:%d" % (SIMULATOR_HOST, port)


def simulator_env(port):
    """The settings that point every Microsoft cloud at the demo's simulator (for the server and workers)."""
    base = simulator_url(port)
    overrides = {cloud: {"login": base, "graph": base + "/graph"} for cloud in ("global", "usgov", "usgov_dod",
                                                                             "china")}
    return {
        "PORTAL_CLOUD_OVERRIDES": json.dumps(overrides), "PORTAL_CA_BUNDLE": str(SIMULATOR_DIR / "ca.pem"),
        # The demo tenants' Jamf Pro is the simulator on loopback: allow-listed like an on-premises one.
        "PORTAL_OUTBOUND_ALLOWED_HOSTS": SIMULATOR_HOST,
    }


def portal_base_url(host, port):
    """Where the demo's portal is reached: PORTAL_BASE_URL when set, else http://<host>:<port> (loopback for a
    wildcard bind)."""
    if os.environ.get("PORTAL_BASE_URL"):
        return os.environ["PORTAL_BASE_URL"].rstrip("/")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%s" % (host, port)


def wait_for_simulator(child, port, timeout=20):
    """Wait until the simulator has written its CA bundle and accepts connections; False if it did not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if (SIMULATOR_DIR / "ca.pem").exists():
            try:
                socket.create_connection((SIMULATOR_HOST, port), timeout=1).close()
                return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


# Sign in with Microsoft in the demo: the simulator plays the MSP's own Entra tenant and its app registration
# for the portal (docs/security.md, "Sign in with Microsoft"); the client secret is new at every start.
DEMO_SSO_TENANT_ID = "5e7c0a1d-2b3f-4c6d-8e9f-0a1b2c3d4e5f"
DEMO_SSO_CLIENT_ID = "7b2d4f6a-8c0e-4a1b-9d3f-5e7a9c1b3d5f"
SSO_CALLBACK_PATH = "/accounts/entra/login/callback/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def sso_env(simulator_base, client_secret):
    """The settings that turn Sign in with Microsoft on, against the simulator's Entra ID at ``simulator_base``."""
    return {
        "PORTAL_SSO_TENANT_ID": DEMO_SSO_TENANT_ID, "PORTAL_SSO_CLIENT_ID": DEMO_SSO_CLIENT_ID,
        "PORTAL_SSO_CLIENT_SECRET": client_secret, "PORTAL_SSO_AUTHORITY": simulator_base + "/oidc",
    }


def sso_redirect_uris(base_url):
    """The portal's callback under ``base_url``; on loopback also under the other loopback name (a browser may
    open http://localhost:8000 when the demo says http://127.0.0.1:8000), as an app registration lists both."""
    uris = [base_url + SSO_CALLBACK_PATH]
    scheme, _, rest = base_url.partition("://")
    host, colon, port = rest.partition(":")
    if host in LOOPBACK_NAMES:
        uris += ["%s://%s%s%s%s" % (scheme, other, colon, port, SSO_CALLBACK_PATH)
                 for other in LOOPBACK_NAMES if other != host]
    return uris


def register_demo_sign_in(simulator_base, ca_bundle, base_url, client_secret, upn, name):
    """Register the portal's app and the demo staff member's work account ``upn`` in the running simulator's
    Entra ID (its control endpoints, simulator/oidc.py). Raises ``requests.RequestException`` when it cannot."""
    with requests.Session() as session:
        for path, body in (
            ("/_sim/oidc/clients", {"tenant": DEMO_SSO_TENANT_ID, "client_id": DEMO_SSO_CLIENT_ID,
                                    "client_secret": client_secret, "redirect_uris": sso_redirect_uris(base_url)}),
            ("/_sim/oidc/users", {"tenant": DEMO_SSO_TENANT_ID, "upn": upn, "name": name}),
        ):
            # verify per request: a session's own is overridden by REQUESTS_CA_BUNDLE when that is set.
            session.post(simulator_base + path, json=body, verify=str(ca_bundle), timeout=10).raise_for_status()


def demo_staff_upn():
    """The demo MSP staff member's e-mail address, which Sign in with Microsoft matches the work account by."""
    user = get_user_model().objects.get(username=MSP_USER)
    if not user.email:
        user.email = MSP_EMAIL
        user.save(update_fields=["email"])
    return user.email


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
        parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("SIMULATOR_PORT") or 0),
                            help="the simulator's HTTPS port (default: SIMULATOR_PORT, else 8443 if free, else a "
                                 "free one)")

    def offer_sign_in_with_microsoft(self, simulator_port, base_url, sso):
        """Register the demo's sign-in app and staff account in the running simulator; their UPN, or None."""
        upn = demo_staff_upn()
        try:
            register_demo_sign_in(simulator_url(simulator_port), SIMULATOR_DIR / "ca.pem", base_url,
                                  sso["PORTAL_SSO_CLIENT_SECRET"], upn, "Demo MSP staff")
        except requests.RequestException as exc:
            self.stderr.write("Sign in with Microsoft is off: the simulator did not take the demo's app (%s)." % exc)
            return None
        return upn

    def handle(self, *args, **options):
        if not port_is_free("" if options["host"] in WILDCARD_HOSTS else options["host"], int(options["port"])):
            raise CommandError("Port %s is in use: pick another with PORT=… (make demo) or --port." % options["port"])
        simulator_port = choose_simulator_port(options["simulator_port"])
        base_url = portal_base_url(options["host"], options["port"])
        settings.PORTAL_BASE_URL = base_url  # what demo_data and this process build URLs with
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("demo_data", simulator_url=simulator_url(simulator_port), stdout=self.stdout)
        children = []
        environment = {**simulator_env(simulator_port), "PORTAL_BASE_URL": base_url,
                       "DEMO_SIMULATOR_URL": simulator_url(simulator_port)}
        env = dict(os.environ)
        env.update(environment)  # the server and every worker talk to the simulator and build URLs alike
        # ...and so do manage.py commands run in another terminal while the demo runs (development only).
        DEMO_ENVIRONMENT_FILE.write_text(json.dumps(environment))
        sso = sso_env(simulator_url(simulator_port), secrets.token_urlsafe(24))  # for the web server only
        staff_upn = None
        signal.signal(signal.SIGTERM, _stop)
        (SIMULATOR_DIR / "ca.pem").unlink(missing_ok=True)  # a fresh one is written when it starts
        logs = Path(settings.VAR_DIR) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        for label, arguments in demo_processes(simulator_port):
            log = open(logs / ("%s.log" % label), "ab")  # noqa: SIM115 - closed with the child
            children.append((label, subprocess.Popen([sys.executable, MANAGE, *arguments], stdout=log, stderr=log,
                                                     env=env, start_new_session=True)))
            self.stdout.write("Started %s (log: %s)" % (label, logs / ("%s.log" % label)))
            if label == "simulator" and not wait_for_simulator(children[-1][1], simulator_port):
                self.stderr.write("The simulator did not start on port %d; see its log." % simulator_port)
            elif label == "simulator":
                staff_upn = self.offer_sign_in_with_microsoft(simulator_port, base_url, sso)
        self.stdout.write("Simulated Entra ID, Intune and Jamf Pro: %s" % simulator_url(simulator_port))
        self.stdout.write(self.style.SUCCESS("\nThe portal is starting at %s/admin/" % base_url))
        self.stdout.write("  MSP staff:       %s / %s" % (MSP_USER, DEMO_PASSWORD))
        if staff_upn:
            self.stdout.write("  %-16s or \"Sign in with Microsoft\" as %s (simulated Entra ID)" % ("", staff_upn))
        for slug, name, *_ in TENANTS:
            self.stdout.write("  %-16s %s-admin / %s" % (name + ":", slug, DEMO_PASSWORD))
        self.stdout.write("Commands such as `manage.py test_connection contoso` in another terminal use the")
        self.stdout.write("simulator too while the demo runs. Press Ctrl-C to stop.\n")
        server = subprocess.Popen(
            [sys.executable, MANAGE, "runserver", "%s:%s" % (options["host"], options["port"]), "--noreload"],
            env={**env, **sso} if staff_upn else env, start_new_session=True,
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
