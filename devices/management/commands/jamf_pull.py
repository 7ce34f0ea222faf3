"""manage.py jamf_pull [slug ...] [--full]: pull inventory from Jamf Pro now (what the schedule does)."""

from django.core.management.base import BaseCommand, CommandError

from devices.pull import pull_inventory
from portal.models import Tenant


class Command(BaseCommand):
    help = (
        "Pull computers-inventory from each tenant's Jamf Pro API now. Incremental by default (what changed since "
        "the last pull); --full fetches everything and marks computers Jamf Pro no longer has as unmanaged."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenants", nargs="*", help="tenant slugs (default: every active tenant with API "
                            "credentials)")
        parser.add_argument("--full", action="store_true", help="full pull and reconcile")

    def handle(self, *args, **options):
        if options["tenants"]:
            tenants = list(Tenant.objects.filter(slug__in=options["tenants"]))
            missing = set(options["tenants"]) - {t.slug for t in tenants}
            if missing:
                raise CommandError("No tenant with the slug %s." % ", ".join(sorted(missing)))
        else:
            tenants = [t for t in Tenant.objects.filter(is_active=True) if t.has_jamf_api]
        failed = 0
        for tenant in tenants:
            if not tenant.has_jamf_api:
                self.stderr.write("%s: no Jamf Pro URL and API credentials; skipped." % tenant.slug)
                continue
            result = pull_inventory(tenant, full=options["full"])
            line = (
                "%s: %s pull (%s) in %.1fs: %d fetched, %d created, %d updated, %d unchanged, %d stale, "
                "%d rejected, %d marked unmanaged"
                % (tenant.slug, result.mode, result.api_version or "?", result.seconds, result.fetched,
                   result.created, result.updated, result.unchanged, result.stale, result.rejected, result.unmanaged)
            )
            if result.error:
                failed += 1
                self.stderr.write("%s. FAILED: %s" % (line, result.error))
            else:
                self.stdout.write(line + (". " + result.note if result.note else ""))
        if failed:
            raise CommandError("%d pull(s) failed." % failed)
