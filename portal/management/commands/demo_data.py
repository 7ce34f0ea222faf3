"""manage.py demo_data: seed an MSP superuser, three customer tenants with admins, and ~200 Macs."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from devices.importer import import_records
from devices.jamf.samples import make_record
from portal import tenancy
from portal.models import Membership, Tenant

DEMO_PASSWORD = "demo-portal-2026"
MSP_USER = "msp"
TENANTS = [
    # slug, name, domain, Macs, landing page
    ("contoso", "Contoso Ltd", "contoso.onmicrosoft.com", 80, "registration"),
    ("fabrikam", "Fabrikam Inc", "fabrikam.onmicrosoft.com", 70, "access_denied"),
    ("northwind", "Northwind Traders", "northwind.onmicrosoft.com", 50, "custom"),
]


class Command(BaseCommand):
    help = "Seed demo data: an MSP superuser, 3 customer tenants each with an admin, and about 200 Macs. Re-runnable."

    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic():
            msp, created = User.objects.get_or_create(
                username=MSP_USER, defaults={"is_staff": True, "is_superuser": True, "email": "msp@example.com"}
            )
            if created:
                msp.set_password(DEMO_PASSWORD)
                msp.save()
        total = 0
        for index, (slug, name, domain, count, landing) in enumerate(TENANTS, 1):
            tenant, _ = Tenant.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "entra_tenant": domain,
                    "client_id": "11111111-2222-4333-8444-%012d" % index,
                    "landing_page": landing,
                    "landing_custom_url": "https://support.%s.example/mac" % slug if landing == "custom" else "",
                    "jamf_enrollment_url": "https://%s.jamfcloud.example/enroll" % slug,
                    "self_service_registration_url": "jamfselfservice://content?entity=policy&id=12&action=view",
                    "support_contact": "IT help desk, help@%s.example, +1 555 0100" % slug,
                },
            )
            admin_user, created = User.objects.get_or_create(
                username="%s-admin" % slug, defaults={"is_staff": True, "email": "admin@%s.example" % slug}
            )
            if created:
                admin_user.set_password(DEMO_PASSWORD)
                admin_user.save()
            Membership.objects.get_or_create(user=admin_user, tenant=tenant, defaults={"role": tenancy.ADMIN})
            records = (make_record(n, slug, domain=slug + ".example") for n in range(1, count + 1))
            result = import_records(tenant, records)
            total += count
            self.stdout.write(
                "%s: %d Macs (created %d, updated %d, unchanged %d)"
                % (name, count, result.created, result.updated, result.unchanged + result.stale)
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready: %d tenants, %d Macs." % (len(TENANTS), total)))
        self.stdout.write("Log in as %s (MSP staff) or <tenant>-admin, password %s" % (MSP_USER, DEMO_PASSWORD))
