"""manage.py simulate_jamf <slug> [--rate N]: make demo Macs change in the simulated Jamf Pro and send the webhooks.

For the demo: the simulator (``manage.py runsimulator``, started by ``make demo``) changes some of the
tenant's Macs (check-ins, and inventory updates with a real change: OS update, FileVault, SIP,
Company Portal) and returns the Jamf Pro webhooks for them; this command posts each one to the
portal's receiver with the tenant's webhook secret, as Jamf Pro would. It exits non-zero, saying why,
when any webhook was not accepted (refused, or the portal did not answer at ``--portal-url``).
"""

import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from devices.webhooks import SECRET_HEADER
from portal.models import Tenant


def simulator_ca():
    """The CA bundle that trusts the simulator: PORTAL_CA_BUNDLE, else the demo's var/simulator/ca.pem."""
    if settings.PORTAL_CA_BUNDLE:
        return settings.PORTAL_CA_BUNDLE
    demo = Path(settings.VAR_DIR) / "simulator" / "ca.pem"
    return str(demo) if demo.exists() else True


class Command(BaseCommand):
    help = "Change some Macs of a tenant in the simulated Jamf Pro and fire the matching webhooks at the portal."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("--rate", type=float, default=None,
                            help="webhooks per second, continuously (until --count or Ctrl-C); default: one burst")
        parser.add_argument("--count", type=int, default=None, help="how many Macs change (default 10 for a burst)")
        parser.add_argument("--kind", choices=["check_in", "inventory", "mixed"], default="mixed")
        parser.add_argument("--add", type=int, default=0, help="also enroll this many new Macs (ComputerAdded)")
        parser.add_argument("--portal-url", default=settings.PORTAL_BASE_URL,
                            help="where the portal listens (default PORTAL_BASE_URL, which `make demo` records "
                                 "in var/demo-environment.json)")

    def handle(self, *args, **options):
        try:
            tenant = Tenant.objects.get(slug=options["tenant"])
        except Tenant.DoesNotExist:
            raise CommandError("No tenant with the slug %r." % options["tenant"]) from None
        if "/jamf/" not in tenant.jamf_url:
            raise CommandError(
                "%s's Jamf Pro URL (%r) is not the simulator's /jamf/<slug>." % (tenant, tenant.jamf_url)
            )
        if not tenant.webhook_secret:
            raise CommandError("%s has no webhook secret: generate one in the admin (tenant list action)." % tenant)
        if options["rate"] is not None and options["rate"] <= 0:
            raise CommandError("--rate must be positive.")
        self.tenant = tenant
        self.simulator = tenant.jamf_url.split("/jamf/")[0]
        self.hook_url = options["portal_url"].rstrip("/") + reverse("jamf-webhook", args=[tenant.slug])
        self.session = requests.Session()
        self.statuses = {}
        kind = None if options["kind"] == "mixed" else options["kind"]
        started = time.monotonic()
        sent = 0
        try:
            if options["add"]:
                sent += self.fire(self.control("add", count=options["add"]))
            if options["rate"] is None:
                sent += self.fire(self.control("change", count=options["count"] or 10, kind=kind))
            else:
                sent += self.stream(options["rate"], options["count"], kind)
        except KeyboardInterrupt:
            pass
        finally:
            self.session.close()
        seconds = time.monotonic() - started
        summary = ", ".join("%s %d" % item for item in sorted(self.statuses.items()))
        self.stdout.write("%d webhooks to %s in %.1fs: %s" % (sent, self.hook_url, seconds, summary or "none"))
        failed = {status: n for status, n in self.statuses.items() if not isinstance(status, int) or status >= 400}
        if failed:
            raise CommandError(self.why(failed, sum(failed.values()), sent))

    def why(self, failed, count, sent):
        """The reason the webhooks failed, in words, for the error exit."""
        reasons = []
        for status in sorted(failed, key=str):
            if not isinstance(status, int):
                reasons.append("%s: the portal did not answer at %s (is it running there? set --portal-url)"
                               % (status, self.hook_url))
            elif status == 401:
                reasons.append("401: the portal refused the webhook secret (regenerate it in the admin, or the "
                               "portal at --portal-url is another one)")
            elif status == 404:
                reasons.append("404: no webhook receiver at %s (wrong --portal-url?)" % self.hook_url)
            else:
                reasons.append("%d: refused; see the tenant's inventory events in the admin" % status)
        return "%d of %d webhooks failed. %s" % (count, sent, " ".join(reasons))

    def control(self, action, **options):
        url = "%s/_sim/jamf/%s/%s" % (self.simulator, self.tenant.slug, action)
        try:
            response = self.session.post(url, json=options, verify=simulator_ca(), timeout=30)
        except requests.RequestException as exc:
            raise CommandError("The simulator at %s does not answer (%s). Is `make demo` running?"
                               % (self.simulator, exc.__class__.__name__)) from None
        if response.status_code != 200:
            raise CommandError("The simulator answered %d: %s" % (response.status_code, response.text[:200]))
        return response.json()["events"]

    def post(self, body):
        try:
            response = self.session.post(self.hook_url, json=body, headers={SECRET_HEADER: self.tenant.webhook_secret},
                                         verify=True, timeout=10)
            status = response.status_code
        except requests.RequestException as exc:
            status = exc.__class__.__name__
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def fire(self, events):
        for body in events:
            self.post(body)
        return len(events)

    def stream(self, rate, count, kind):
        """Send ``rate`` webhooks a second, in one-second rounds, until ``count`` (or Ctrl-C)."""
        sent = 0
        self.stdout.write("Sending %g webhooks a second to %s; Ctrl-C stops." % (rate, self.hook_url))
        carry = 0.0
        while count is None or sent < count:
            tick = time.monotonic()
            carry += rate
            batch = int(carry)
            carry -= batch
            if count is not None:
                batch = min(batch, count - sent)
            events = self.control("change", count=batch, kind=kind) if batch else []
            for index, body in enumerate(events):
                self.post(body)
                # Spread the round over the second.
                pause = tick + (index + 1) / max(batch, 1) - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            sent += len(events)
            rest = tick + 1 - time.monotonic()
            if rest > 0:
                time.sleep(rest)
        return sent
