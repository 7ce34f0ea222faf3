"""The partner application model (issue 11): one per installation, credentials, environment, migration."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from portal import partner
from portal.models import PartnerApplication, PartnerCredential, Tenant
from tests.factories import TenantFactory

APP_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def make_partner(**kwargs):
    app = PartnerApplication.objects.create(client_id=APP_ID, display_name="Contoso MSP Compliance", **kwargs)
    return app


def test_certificate_generation_has_the_thumbprint_entra_shows():
    made = partner.generate_certificate("Contoso MSP", days=365)
    cert = x509.load_pem_x509_certificate(made.certificate_pem.encode())
    assert made.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    assert (made.not_after - made.not_before).days == 365
    assert "PRIVATE KEY" in made.private_key_pem
    assert partner.certificate_der(made.certificate_pem)[:1] == b"\x30"  # DER SEQUENCE
    with pytest.raises(ValueError):
        partner.generate_certificate("x", days=0)


@pytest.mark.django_db
def test_private_key_and_secret_are_encrypted_at_rest():
    app = make_partner()
    made = partner.generate_certificate("Contoso MSP", days=30)
    PartnerCredential.objects.create(
        application=app, kind="certificate", private_key=made.private_key_pem, certificate=made.certificate_pem,
        thumbprint=made.thumbprint, expires_at=made.not_after,
    )
    PartnerCredential.objects.create(
        application=app, kind="secret", secret_value="partner~secret~value", expires_at=timezone.now()
        + datetime.timedelta(days=10),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key, secret_value, certificate FROM portal_partnercredential")
        rows = cursor.fetchall()
    raw = " ".join(str(v) for row in rows for v in row)
    assert "PRIVATE KEY" not in raw and "partner~secret~value" not in raw
    assert "BEGIN CERTIFICATE" in raw  # the public part is not secret
    config = partner.partner_application()
    assert config.source == partner.DATABASE and config.client_id == APP_ID
    assert [c.kind for c in config.credentials] == ["certificate", "secret"]  # newest expiry first
    assert config.credentials[0].msal_credential()["private_key"] == made.private_key_pem


@pytest.mark.django_db
def test_one_partner_application_per_installation():
    make_partner()
    with pytest.raises(ValidationError):
        PartnerApplication.objects.create(client_id=APP_ID, display_name="second")


@pytest.mark.django_db
def test_environment_wins_and_needs_a_credential(settings, tmp_path):
    make_partner()
    made = partner.generate_certificate("env", days=10)
    settings.PORTAL_PARTNER_APP = {
        "client_id": "99999999-bbbb-4ccc-8ddd-eeeeeeeeeeee", "display_name": "From env",
        "certificate_pem": made.private_key_pem + made.certificate_pem,
    }
    config = partner.partner_application()
    assert config.source == partner.ENVIRONMENT
    assert config.credentials[0].thumbprint == made.thumbprint
    assert config.credentials[0].expires_at == made.not_after


def test_settings_refuse_a_client_id_without_credentials(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from portal import settings as portal_settings

    monkeypatch.setenv("PORTAL_PARTNER_CLIENT_ID", APP_ID)
    monkeypatch.delenv("PORTAL_PARTNER_CERTIFICATE_FILE", raising=False)
    monkeypatch.delenv("PORTAL_PARTNER_CLIENT_SECRET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_PARTNER_CERTIFICATE_FILE"):
        portal_settings._partner_app_from_environment()
    monkeypatch.setenv("PORTAL_PARTNER_CLIENT_SECRET", "s3cret-value")
    monkeypatch.setenv("PORTAL_PARTNER_CLIENT_SECRET_EXPIRES", "2027-05-31")
    config = portal_settings._partner_app_from_environment()
    assert config["client_secret_expires"].year == 2027


@pytest.mark.django_db
def test_partner_mode_tenant_needs_no_app_of_its_own():
    tenant = TenantFactory(use_own_app=False, client_id="", intune_enabled=True)
    with pytest.raises(ValidationError) as info:
        tenant.full_clean()
    assert "partner application" in str(info.value)
    make_partner()
    tenant.full_clean()
    assert tenant.connection_configured and not tenant.uses_own_app
    tenant.reporting_mode = "inventory"  # the legacy mode keeps the per-tenant app
    with pytest.raises(ValidationError) as info:
        tenant.full_clean()
    assert "client_id" in info.value.message_dict


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_own_app_and_secrets_as_override():
    executor = MigrationExecutor(connection)
    executor.migrate([("portal", "0006_audit_trail")])
    old_apps = executor.loader.project_state([("portal", "0006_audit_trail")]).apps
    OldTenant = old_apps.get_model("portal", "Tenant")
    OldSecret = old_apps.get_model("portal", "ClientSecret")
    with_secret = OldTenant.objects.create(name="A", slug="a", entra_tenant="a.onmicrosoft.com", client_id=APP_ID)
    OldSecret.objects.create(tenant=with_secret, value="gAAAA-not-read", expires_at=timezone.now())
    OldTenant.objects.create(name="B", slug="b", entra_tenant="b.onmicrosoft.com", client_id=APP_ID)
    OldTenant.objects.create(name="C", slug="c", entra_tenant="c.onmicrosoft.com")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    overrides = dict(Tenant.objects.values_list("slug", "use_own_app"))
    assert overrides == {"a": True, "b": False, "c": False}
