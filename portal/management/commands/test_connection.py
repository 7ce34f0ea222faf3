"""manage.py test_connection <slug>: test a tenant's connection to Entra ID and Intune, step by step."""

from django.core.management.base import BaseCommand, CommandError

from compliance import connection
from portal.models import Tenant


class Command(BaseCommand):
    help = "Test the Entra ID / Intune connection of one tenant (or --all) and print each step."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="slug")
        parser.add_argument("--all", action="store_true", help="Every active tenant with an Entra tenant set.")
        parser.add_argument("--details", action="store_true", help="Also print the raw detail of a failure.")

    def handle(self, *args, **options):
        if options["all"]:
            tenants = list(Tenant.objects.filter(is_active=True).exclude(entra_tenant=""))
        elif options["slugs"]:
            tenants = []
            for slug in options["slugs"]:
                try:
                    tenants.append(Tenant.objects.get(slug=slug))
                except Tenant.DoesNotExist:
                    raise CommandError("No tenant with the slug %r." % slug) from None
        else:
            raise CommandError("Name a tenant slug, or pass --all.")
        failures = 0
        for tenant in tenants:
            result = connection.test_connection(tenant)
            self.stdout.write(self.style.MIGRATE_HEADING("%s (%s)" % (tenant.name, tenant.slug)))
            for step in result.steps:
                style = {True: self.style.SUCCESS, False: self.style.ERROR, None: self.style.WARNING}[step.ok]
                self.stdout.write("  " + style("%s %s" % (step.symbol, step.name)) + ": " + step.message)
                if step.advice:
                    self.stdout.write("      What to do: %s" % step.advice)
                if step.detail and options["details"]:
                    self.stdout.write("      Detail: %s" % step.detail)
            self.stdout.write(self.style.SUCCESS("  Connection OK") if result.ok else self.style.ERROR("  Failed"))
            failures += not result.ok
        if failures:
            raise CommandError("%d of %d tenant(s) failed the connection test." % (failures, len(tenants)))
