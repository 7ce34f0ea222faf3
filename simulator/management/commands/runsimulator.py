"""manage.py runsimulator: the local HTTPS stand-in for Entra ID, Graph, Intune and Jamf Pro (for the demo).

It makes a fresh CA and server certificate at start, writes the CA bundle to ``<cert-dir>/ca.pem``
(point ``PORTAL_CA_BUNDLE`` at it) and registers every portal tenant that has an Entra tenant and an
application ID, with its client secrets, read from the database: the demo's Test connection is green.
"""

import json
import signal

from django.core.management.base import BaseCommand

from simulator.app import create_simulator


def seed_from_database(service):
    """Register each configured portal tenant (domain, app ID, secrets) in the simulated Entra ID."""
    from portal.models import Tenant

    names = []
    for tenant in Tenant.objects.exclude(entra_tenant="").exclude(client_id="").prefetch_related("client_secrets"):
        service.register_portal_tenant(tenant, seed=True)
        names.append(tenant.entra_tenant)
    return names


class Command(BaseCommand):
    help = "Run the Microsoft and Jamf Pro simulator on HTTPS, seeded from the portal's tenants."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8443)
        parser.add_argument("--cert-dir", default=None, help="Where ca.pem and the server certificate go "
                            "(default: var/simulator).")
        parser.add_argument("--no-seed", action="store_true", help="Do not register the portal's tenants.")

    def handle(self, *args, **options):
        from django.conf import settings

        cert_dir = options["cert_dir"] or str(settings.VAR_DIR / "simulator")
        sim = create_simulator(host=options["host"], port=options["port"], cert_dir=cert_dir)
        try:
            from simulator.microsoft import MicrosoftService

            microsoft = sim.service(MicrosoftService)
        except LookupError:
            microsoft = None
        if microsoft and not options["no_seed"]:
            for name in seed_from_database(microsoft):
                self.stdout.write("Entra tenant registered: %s" % name)
        sim.start()
        base = sim.base_url
        overrides = {cloud: {"login": base, "graph": base + "/graph"} for cloud in ("global", "usgov", "usgov_dod",
                                                                                 "china")}
        self.stdout.write(self.style.SUCCESS("Simulator listening on %s" % base))
        self.stdout.write("CA bundle: %s" % sim.ca_path)
        self.stdout.write("Point the portal at it with:")
        self.stdout.write("  PORTAL_CA_BUNDLE=%s" % sim.ca_path)
        self.stdout.write("  PORTAL_CLOUD_OVERRIDES='%s'" % json.dumps(overrides))
        self.stdout.flush()

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            sim.thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
            self.stdout.write("Simulator stopped.")
