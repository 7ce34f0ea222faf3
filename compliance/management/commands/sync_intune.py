"""manage.py sync_intune [--tenant slug] [--dry-run]: evaluate and report to Intune now, with a summary."""

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from compliance.delivery import due_reports
from compliance.models import ComplianceReport
from compliance.outbox import queue_reports
from compliance.sync import deliver, enabled_tenants, evaluate_and_queue, poll
from portal.models import Tenant

Status = ComplianceReport.Status


class Command(BaseCommand):
    help = (
        "Evaluate the Macs of one tenant (or of every tenant with Intune enabled), queue the reports that calls "
        "for, and deliver every due report to Intune now; then read back Intune's verdict. --dry-run writes "
        "nothing and prints the payloads it would send."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="a tenant's slug (default: every active tenant with Intune enabled)")
        parser.add_argument("--dry-run", action="store_true",
                            help="print the reports that would be queued, with their payloads; write nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    def handle(self, *args, **options):
        if options["tenant"]:
            try:
                tenants = [Tenant.objects.get(slug=options["tenant"])]
            except Tenant.DoesNotExist:
                raise CommandError("No tenant with the slug %r." % options["tenant"]) from None
        else:
            tenants = list(enabled_tenants())
            if not tenants:
                self.stdout.write("No active tenant has the Intune integration enabled.")
                return
        for tenant in tenants:
            if options["dry_run"]:
                self.dry_run(tenant)
            else:
                self.sync(tenant, progress=not options["no_progress"])

    def dry_run(self, tenant):
        """Print what an evaluation would queue, from the stored evaluation results; nothing is written."""
        self.stdout.write("# %s (%s)%s" % (tenant.name, tenant.slug, "" if tenant.intune_enabled else
                                            " - Intune integration disabled: nothing would be sent"))

        def show(computer, user, reason, entities):
            self.stdout.write("## %s / %s: %s" % (computer.name or computer.serial_number, user.username, reason))
            self.stdout.write(json.dumps(entities, indent=2))

        result = queue_reports(tenant.pk, dry_run=True, on_payload=show)
        if result.skipped and not result.created:
            self.stdout.write("Nothing to report: %s." % result.skipped)
        waiting = ComplianceReport.objects.filter(tenant=tenant, status=Status.PENDING).count()
        self.stdout.write(
            "Dry run: %d registered pairs, %d reports would be queued, %d unchanged; %d already waiting in the "
            "outbox." % (result.pairs, result.created, result.unchanged, waiting)
        )

    def sync(self, tenant, progress=True):
        if not (tenant.is_active and tenant.intune_enabled):
            self.stdout.write("%s: the Intune integration is disabled; nothing sent." % tenant.slug)
            return
        started = time.monotonic()
        evaluation = evaluate_and_queue(tenant.pk)
        total = due_reports(tenant.pk).count()
        bar = None
        if progress and total:
            from tqdm import tqdm

            bar = tqdm(total=total, unit=" reports", desc="%s: delivering" % tenant.slug, file=sys.stderr)
        totals = {"accepted": 0, "failed": 0, "messages": 0}
        try:
            while True:
                counters = deliver(tenant.pk, progress=bar.update if bar else (lambda n: None), incremental=False)
                for key in totals:
                    totals[key] += counters.get(key, 0)
                if counters.get("stopped"):
                    self.stderr.write("%s: delivery stopped: %s" % (tenant.slug, counters["stopped"]))
                if not counters.get("more"):
                    break
        finally:
            if bar:
                bar.close()
        verdict = poll(tenant.pk) if totals["accepted"] else {}
        left = dict(
            ComplianceReport.objects.filter(tenant=tenant, status=Status.PENDING)
            .order_by().values_list("status").annotate(n=Count("id"))
        )
        self.stdout.write(
            "%s: %d Macs evaluated, %d reports queued; %d accepted by Intune in %d messages, %d failed, "
            "%d completed by Intune so far, %d waiting to be retried (%.1f s)." % (
                tenant.slug, evaluation.get("computers", 0), evaluation.get("created", 0), totals["accepted"],
                totals["messages"], totals["failed"] + verdict.get("failed", 0), verdict.get("completed", 0),
                sum(left.values()), time.monotonic() - started,
            )
        )
