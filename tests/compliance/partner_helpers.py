"""Helpers for the partner-application tests: the MSP's app, its credentials, and a consented customer tenant."""

import datetime
import functools

from django.utils import timezone

from portal.models import CredentialKind, PartnerApplication, PartnerCredential
from portal.partner import generate_certificate
from tests.compliance.intune_helpers import microsoft
from tests.factories import TenantFactory

PARTNER_ID = "0d5c7e3a-6f1b-4c2d-9a8e-5b4f3c2d1e0f"
PARTNER_NAME = "Demo MSP Mac Compliance"
PARTNER_SECRET = "partner~secret~value~0123456789"


@functools.lru_cache(maxsize=8)
def certificate(index=0, days=365):
    """A generated key pair and certificate (RSA generation is slow: made once per index and test process)."""
    return generate_certificate("%s %d" % (PARTNER_NAME, index), days)


def add_certificate(app, made, expires_at=None):
    return PartnerCredential.objects.create(
        application=app, kind=CredentialKind.CERTIFICATE, private_key=made.private_key_pem,
        certificate=made.certificate_pem, thumbprint=made.thumbprint, not_before=made.not_before,
        expires_at=expires_at or made.not_after,
    )


def add_secret(app, value=PARTNER_SECRET, days=180):
    return PartnerCredential.objects.create(
        application=app, kind=CredentialKind.SECRET, secret_value=value,
        expires_at=timezone.now() + datetime.timedelta(days=days),
    )


def partner_app(certificates=(0,), secrets=()):
    """The partner application with the certificates (by index) and secrets given."""
    app = PartnerApplication.objects.create(client_id=PARTNER_ID, display_name=PARTNER_NAME)
    for index in certificates:
        add_certificate(app, certificate(index))
    for value in secrets:
        add_secret(app, value)
    return app


def register_partner(sim, certificates=(0,), secrets=(), **options):
    """The same partner app as Entra ID knows it: the certificates uploaded, the secrets added."""
    return microsoft(sim).register_app(
        PARTNER_ID, PARTNER_NAME, list(secrets), [certificate(i).certificate_pem for i in certificates], **options
    )


def partner_tenant(sim, consent=True, **fields):
    """A customer tenant in partner mode (no app of its own), known to the simulated Entra ID."""
    tenant = TenantFactory(use_own_app=False, client_id="", **fields)
    sim_tenant = microsoft(sim).register(tenant.entra_tenant, consent_to=[PARTNER_ID] if consent else [])
    if consent:
        tenant.consent_granted_at = timezone.now()
        tenant.save(update_fields=["consent_granted_at"])
    return tenant, sim_tenant
