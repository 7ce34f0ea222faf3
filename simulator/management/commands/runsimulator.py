"""manage.py runsimulator: the local HTTPS stand-in for Entra ID, Graph, Intune and Jamf Pro (for the demo).

It makes a fresh CA and server certificate at start, writes the CA bundle to ``<cert-dir>/ca.pem``
(point ``PORTAL_CA_BUNDLE`` at it) and registers, read from the database, the MSP's partner application
(client ID, display name, client secrets and certificates) and every portal tenant that has an Entra
tenant: its own app and client secrets in the legacy mode or an override, else its consent to the partner
app when the portal recorded one. It reads the database again every few seconds (``--refresh``), so a
tenant, a certificate or a secret added in the admin is known without a restart (the customer's Entra
tenant and the uploaded certificate exist in the real world before the portal uses them).
"""

import json
import logging
import signal
import threading

from django.core.management.base import BaseCommand

from simulator.app import create_simulator

logger = logging.getLogger(__name__)


def seed_from_database(service, seed=True):
    """Register the partner app and each portal tenant with an Entra tenant in the simulated Entra ID."""
    from portal.models import Tenant
    from portal.partner import partner_application

    names = []
    partner = partner_application()
    if partner is not None:
        service.register_partner_app(partner, seed=seed)
        names.append("partner application %s (%s)" % (partner.display_name, partner.client_id))
    for tenant in Tenant.objects.exclude(entra_tenant="").prefetch_related("client_secrets"):
        if tenant.uses_own_app and not tenant.client_id:
            continue
        service.register_portal_tenant(tenant, seed=seed, partner=partner)
        names.append(tenant.entra_tenant)
    return names


def refresh_loop(service, interval, stop):
    """Read the database again every ``interval`` seconds until ``stop`` is set (new tenants, credentials)."""
    from django.db import close_old_connections

    while not stop.wait(interval):
        try:
            seed_from_database(service, seed=False)
        except Exception:  # noqa: BLE001 - the simulator keeps serving; the next round tries again
            logger.exception("re-reading the portal's tenants failed")
        finally:
            close_old_connections()


class Command(BaseCommand):
    help = "Run the Microsoft and Jamf Pro simulator on HTTPS, seeded from the portal's tenants."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8443)
        parser.add_argument("--cert-dir", default=None, help="Where ca.pem and the server certificate go "
                            "(default: var/simulator).")
        parser.add_argument("--no-seed", action="store_true", help="Do not register the portal's tenants.")
        parser.add_argument("--refresh", type=float, default=5.0, help="Seconds between reads of the portal's "
                            "tenants and credentials (0: only at start).")

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
        stop_refresh = threading.Event()
        if microsoft and not options["no_seed"] and options["refresh"] > 0:
            threading.Thread(target=refresh_loop, args=(microsoft, options["refresh"], stop_refresh),
                             name="simulator-refresh", daemon=True).start()
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
            stop_refresh.set()
            sim.stop()
            self.stdout.write("Simulator stopped.")
