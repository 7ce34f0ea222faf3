"""manage.py rundemo: migrate, seed the demo, start the background processes and the web server.

What `make demo` runs. The background processes (the Microsoft/Jamf simulator and the django-q2
worker, as they land) are listed in ``DEMO_PROCESSES``; each is started as a child and stopped
when the server stops.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.management.commands.demo_data import DEMO_PASSWORD, MSP_USER, TENANTS

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")

# (label, manage.py arguments) of the processes that run beside the web server in the demo.
DEMO_PROCESSES = []


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
        logs = Path(settings.VAR_DIR) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        for label, arguments in DEMO_PROCESSES:
            log = open(logs / ("%s.log" % label), "ab")  # noqa: SIM115 - closed with the child
            children.append((label, subprocess.Popen([sys.executable, MANAGE, *arguments], stdout=log, stderr=log,
                                                     env=env)))
            self.stdout.write("Started %s (log: %s)" % (label, logs / ("%s.log" % label)))
        base = "http://%s:%s" % (options["host"], options["port"])
        self.stdout.write(self.style.SUCCESS("\nThe portal is starting at %s/admin/" % base))
        self.stdout.write("  MSP staff:       %s / %s" % (MSP_USER, DEMO_PASSWORD))
        for slug, name, *_ in TENANTS:
            self.stdout.write("  %-16s %s-admin / %s" % (name + ":", slug, DEMO_PASSWORD))
        self.stdout.write("Press Ctrl-C to stop.\n")
        server = subprocess.Popen(
            [sys.executable, MANAGE, "runserver", "%s:%s" % (options["host"], options["port"]), "--noreload"], env=env
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
            for _label, child in [("server", server), *children]:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for _label, child in [("server", server), *children]:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
