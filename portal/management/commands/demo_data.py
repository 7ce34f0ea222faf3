"""manage.py demo_data: seed an MSP superuser, the MSP's partner application, three customer tenants with admins,
and ~200 Macs. Contoso and Fabrikam are in partner mode (no app of their own: they consented to the partner
application); Northwind stays on the legacy inventory mode with its own app registration and client secret."""

import datetime
import re
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from compliance.evaluation import evaluate_tenant
from devices.importer import import_records
from devices.jamf.samples import make_record
from portal import tenancy
from portal.models import ClientSecret, CredentialKind, Membership, PartnerApplication, PartnerCredential, Tenant
from portal.partner import generate_certificate

DEMO_PASSWORD = "demo-portal-2026"
MSP_USER = "msp"
MSP_EMAIL = "msp@example.com"  # also the demo staff member's account in the simulated Entra ID (rundemo)
TENANTS = [
    # slug, name, domain, Macs, landing page
    ("contoso", "Contoso Ltd", "contoso.onmicrosoft.com", 80, "registration"),
    ("fabrikam", "Fabrikam Inc", "fabrikam.onmicrosoft.com", 70, "access_denied"),
    ("northwind", "Northwind Traders", "northwind.onmicrosoft.com", 50, "custom"),
]
LEGACY_TENANTS = {"northwind"}  # the legacy inventory mode, with the tenant's own app registration
PARTNER_CLIENT_ID = "0d5c7e3a-6f1b-4c2d-9a8e-5b4f3c2d1e0f"
PARTNER_NAME = "Demo MSP Mac Compliance"


def seed_partner_application():
    """The MSP's partner app with a generated certificate and an older client secret (a rollover in progress).

    Kept when it exists (a re-run never replaces a certificate someone uploaded)."""
    app = PartnerApplication.objects.order_by("pk").first()
    if app is None:
        app = PartnerApplication.objects.create(client_id=PARTNER_CLIENT_ID, display_name=PARTNER_NAME)
    if not app.credentials.filter(kind=CredentialKind.CERTIFICATE, expires_at__gt=timezone.now()).exists():
        made = generate_certificate(app.display_name, days=365)
        PartnerCredential.objects.create(
            application=app, kind=CredentialKind.CERTIFICATE, description="Demo certificate",
            private_key=made.private_key_pem, certificate=made.certificate_pem, thumbprint=made.thumbprint,
            not_before=made.not_before, expires_at=made.not_after,
        )
    if not app.credentials.filter(kind=CredentialKind.SECRET).exists():
        PartnerCredential.objects.create(
            application=app, kind=CredentialKind.SECRET, description="Demo secret (being replaced)",
            secret_value="demo~" + secrets.token_urlsafe(30),
            expires_at=timezone.now() + datetime.timedelta(days=25),
        )
    return app


# Compliance policies per demo tenant (name -> settings), as an MSP would mirror them from Intune.
DEMO_POLICIES = {
    "contoso": {
        "macOS security baseline": dict(
            description="FileVault, SIP, Gatekeeper and no automatic login on a supported macOS.",
            min_os_version="13.6", require_filevault=True, require_sip=True, gatekeeper="identified_developers",
            require_auto_login_disabled=True,
        ),
        "Passwords": dict(password_min_length=8),
        "Inventory freshness": dict(max_inventory_age_days=14),
    },
    "fabrikam": {
        "Security baseline": dict(min_os_version="13.6", require_filevault=True, require_sip=True),
        "Passwords": dict(password_min_length=8, password_type="Simple"),
    },
    "northwind": {
        "Baseline": dict(min_os_version="13.0", max_os_version="15.9", require_filevault=True),
        "Inventory freshness": dict(max_inventory_age_days=7),
    },
}


def backdate_company_portal(tenant, since):
    """Company Portal seen up to three weeks ago (first import sees it "now"), so the demo has onboarding history."""
    from devices.models import Computer

    fresh = Computer.objects.filter(tenant=tenant, company_portal_seen_at__gte=since)
    by_days = {}
    for pk, jamf_id in fresh.values_list("pk", "jamf_id"):
        by_days.setdefault(int(jamf_id) % 22 if jamf_id.isdigit() else 0, []).append(pk)
    for days, ids in by_days.items():
        Computer.objects.filter(pk__in=ids).update(company_portal_seen_at=since - datetime.timedelta(days=days))


def seed_policies(tenant):
    """Create the tenant's demo policies that are missing; leave the ones a user may have edited."""
    from compliance.models import CompliancePolicy

    existing = set(CompliancePolicy.objects.filter(tenant=tenant).values_list("name", flat=True))
    # bulk_create: the import right after evaluates with them, no background re-evaluation needed.
    CompliancePolicy.objects.bulk_create([
        CompliancePolicy(tenant=tenant, name=name, **settings)
        for name, settings in DEMO_POLICIES.get(tenant.slug, {}).items() if name not in existing
    ])


def seed_snapshot_history(tenant, days=30):
    """Today's fleet counts, and for a new demo a month of earlier days leading up to them (a rollout that
    improves week by week), so the dashboard's trend chart has a story. Days already stored are kept."""
    from compliance.models import ComplianceDailySnapshot
    from compliance.reports import take_snapshots

    take_snapshots([tenant.pk])
    today = ComplianceDailySnapshot.objects.filter(tenant=tenant).latest("date")
    rows = []
    for back in range(1, days):
        # Compliant share from about 55 % of today's a month ago, rising a little each day, flat on weekends.
        date = today.date - datetime.timedelta(days=back)
        factor = 1 - 0.45 * back / days + (0.02 if date.weekday() >= 5 else 0)
        compliant = int(today.compliant * min(factor, 1))
        not_evaluated = today.not_evaluated
        rows.append(ComplianceDailySnapshot(
            tenant=tenant, date=date, total=today.total, compliant=compliant,
            not_compliant=today.total - compliant - not_evaluated, not_evaluated=not_evaluated,
            activated=today.activated, deactivated=today.deactivated, unresponsive=today.unresponsive,
            registered=today.registered, taken_at=timezone.now(),
        ))
    ComplianceDailySnapshot.objects.bulk_create(rows, ignore_conflicts=True)


DEMO_JAMF_URL = "%s/jamf/%s"  # (simulator URL, slug): the simulated Jamf Pro that `make demo` runs
# A demo tenant's Jamf Pro URL as an earlier demo set it (the simulator on loopback, on whatever port it had).
EARLIER_DEMO_JAMF_URL = re.compile(r"^https://127\.0\.0\.1:\d+/jamf/[a-z0-9-]+$")


def demo_simulator_url():
    """The demo simulator's address: DEMO_SIMULATOR_URL (rundemo sets it), else the default port 8443."""
    return (getattr(settings, "DEMO_SIMULATOR_URL", "") or "https://127.0.0.1:8443").rstrip("/")


def connect_demo_jamf(tenant, simulator_url=None):
    """Point the tenant at the simulated Jamf Pro, with the API client it accepts and a webhook secret.

    Set once: a re-run keeps what is there (a rotated webhook secret included), except that a URL an earlier
    demo set follows the simulator to its port of today.
    """
    from devices.webhooks import generate_webhook_secret
    from simulator.jamf import credentials_for

    changed = []
    jamf_url = DEMO_JAMF_URL % (simulator_url or demo_simulator_url(), tenant.slug)
    if tenant.jamf_url != jamf_url and EARLIER_DEMO_JAMF_URL.match(tenant.jamf_url or ""):
        tenant.jamf_url = jamf_url
        changed.append("jamf_url")
    if not tenant.jamf_url:
        tenant.jamf_url = jamf_url
        tenant.jamf_client_id, tenant.jamf_client_secret = credentials_for(tenant.slug)
        changed += ["jamf_url", "jamf_client_id", "jamf_client_secret"]
    if not tenant.webhook_secret:
        tenant.webhook_secret = generate_webhook_secret()  # simulate_jamf reads it from the database
        changed.append("webhook_secret")
    if changed:
        tenant.save(update_fields=changed)


class Command(BaseCommand):
    help = "Seed demo data: an MSP superuser, 3 customer tenants each with an admin, and about 200 Macs. Re-runnable."

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=None,
                            help="the demo simulator's address (default DEMO_SIMULATOR_URL, else https://127.0.0.1:8443)")

    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic():
            msp, created = User.objects.get_or_create(
                username=MSP_USER, defaults={"is_staff": True, "is_superuser": True, "email": MSP_EMAIL}
            )
            if created:
                msp.set_password(DEMO_PASSWORD)
                msp.save()
        seed_partner_application()
        total = 0
        for index, (slug, name, domain, count, landing) in enumerate(TENANTS, 1):
            legacy = slug in LEGACY_TENANTS
            tenant, _ = Tenant.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "entra_tenant": domain,
                    # Partner mode: no app of its own, and the consent to the partner app already granted.
                    "client_id": "11111111-2222-4333-8444-%012d" % index if legacy else "",
                    "reporting_mode": "inventory" if legacy else "partner_compliance",
                    "use_own_app": legacy,
                    "consent_granted_at": None if legacy else timezone.now(),
                    "consent_granted_by": "" if legacy else MSP_USER,
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
            # The legacy tenant's own client secret; `manage.py runsimulator` registers it in the simulated Entra ID.
            if tenant.uses_own_app and not tenant.client_secrets.filter(expires_at__gt=timezone.now()).exists():
                ClientSecret.objects.create(
                    tenant=tenant,
                    value="demo~" + secrets.token_urlsafe(30),
                    description="Demo secret",
                    expires_at=timezone.now() + datetime.timedelta(days=180),
                )
            if not tenant.intune_enabled:
                # Provisions the tenant in the simulated Intune (a task), and its Macs' reports flow there.
                tenant.intune_enabled = True
                tenant.save(update_fields=["intune_enabled", "updated_at"])
            connect_demo_jamf(tenant, options.get("simulator_url"))
            seed_policies(tenant)
            records = (make_record(n, slug, domain=slug + ".example") for n in range(1, count + 1))
            started = timezone.now()
            result = import_records(tenant, records)
            backdate_company_portal(tenant, started)
            evaluation = evaluate_tenant(tenant.pk)  # the import evaluated what it changed; this covers the rest
            seed_snapshot_history(tenant)
            total += count
            self.stdout.write(
                "%s: %d Macs (created %d, updated %d, unchanged %d); %d compliant, %d not compliant"
                % (name, count, result.created, result.updated, result.unchanged + result.stale,
                   evaluation.compliant, evaluation.not_compliant)
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready: %d tenants, %d Macs." % (len(TENANTS), total)))
        self.stdout.write("Log in as %s (MSP staff) or <tenant>-admin, password %s" % (MSP_USER, DEMO_PASSWORD))
