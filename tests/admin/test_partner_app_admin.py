"""The partner application's admin: MSP admins only, certificate generation and download, write-only secrets,
the environment's read-only page, and the expiry warnings (admin, dashboard, e-mail)."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from compliance.tasks import check_secret_expiry
from portal.models import PartnerApplication, PartnerCredential
from tests.compliance.partner_helpers import PARTNER_ID, add_secret, certificate, partner_app
from tests.conftest import member
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:portal_partnerapplication_changelist")


@pytest.fixture
def msp_admin(db):
    user = UserFactory(username="msp-admin")
    user.user_permissions.add(Permission.objects.get(codename="manage_partner_application"))
    return user


def test_only_superusers_and_msp_admins_may_see_it(client, msp_user, msp_admin, tenant_a):
    partner_app(certificates=())
    for user, allowed in ((msp_user, True), (msp_admin, True), (member(tenant_a, "admin"), False),
                          (UserFactory(username="plain-staff"), False)):
        client.force_login(user)
        response = client.get(LIST, follow=True)
        assert (response.status_code == 200) is allowed, user
        index = client.get(reverse("admin:index")).content.decode()
        assert ("partnerapplication" in index) is allowed


def test_first_visit_offers_the_add_form_then_the_single_row(client, msp_user):
    client.force_login(msp_user)
    assert client.get(LIST)["Location"] == reverse("admin:portal_partnerapplication_add")
    response = client.post(reverse("admin:portal_partnerapplication_add"), {
        "client_id": "not-a-guid", "display_name": "x",
        "certificates-TOTAL_FORMS": "0", "certificates-INITIAL_FORMS": "0",
        "secrets-TOTAL_FORMS": "0", "secrets-INITIAL_FORMS": "0",
    })
    assert "client_id" in response.context["adminform"].form.errors  # the field is named
    app = partner_app(certificates=())
    assert client.get(LIST)["Location"] == reverse("admin:portal_partnerapplication_change", args=[app.pk])


def test_generate_certificate_and_download_only_the_public_part(client, msp_admin):
    app = partner_app(certificates=())
    client.force_login(msp_admin)
    url = reverse("admin:portal_partnerapplication_generate", args=[app.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"days": "0"})
    assert "days" in response.context["form"].errors
    response = client.post(url, {"days": "400", "description": "2026 rollover"}, follow=True)
    credential = PartnerCredential.objects.get()
    assert credential.kind == "certificate" and (credential.expires_at - timezone.now()).days in (399, 400)
    text = response.content.decode()
    assert credential.thumbprint in text and "PRIVATE KEY" not in text
    cer = client.get(reverse("admin:portal_partnerapplication_certificate", args=[app.pk, credential.pk, "cer"]))
    assert cer["Content-Type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(cer.content)
    assert cert.fingerprint(hashes.SHA1()).hex().upper() == credential.thumbprint  # noqa: S303
    pem = client.get(reverse("admin:portal_partnerapplication_certificate", args=[app.pk, credential.pk, "pem"]))
    assert b"BEGIN CERTIFICATE" in pem.content and b"PRIVATE KEY" not in pem.content
    page = client.get(reverse("admin:portal_partnerapplication_change", args=[app.pk])).content.decode()
    assert "PRIVATE KEY" not in page and credential.thumbprint in page


def test_a_tenant_admin_cannot_generate_or_download(client, tenant_a):
    app = partner_app(certificates=(0,))
    credential = app.credentials.get()
    client.force_login(member(tenant_a, "admin"))
    assert client.post(reverse("admin:portal_partnerapplication_generate", args=[app.pk]),
                       {"days": "30"}).status_code == 403
    assert client.get(reverse("admin:portal_partnerapplication_certificate",
                              args=[app.pk, credential.pk, "pem"])).status_code == 403


def test_client_secret_is_write_only(client, msp_user):
    app = partner_app(certificates=())
    client.force_login(msp_user)
    expires = (timezone.now() + datetime.timedelta(days=90)).strftime("%Y-%m-%d")
    url = reverse("admin:portal_partnerapplication_change", args=[app.pk])
    response = client.post(url, {
        "client_id": PARTNER_ID, "display_name": app.display_name,
        "certificates-TOTAL_FORMS": "0", "certificates-INITIAL_FORMS": "0",
        "secrets-TOTAL_FORMS": "1", "secrets-INITIAL_FORMS": "0",
        "secrets-0-secret_value": "brand~new~partner~secret", "secrets-0-description": "old way",
        "secrets-0-expires_at_0": expires, "secrets-0-expires_at_1": "12:00:00",
    }, follow=True)
    assert response.status_code == 200
    secret = PartnerCredential.objects.get()
    assert secret.kind == "secret" and secret.secret_value == "brand~new~partner~secret"
    assert "brand~new~partner~secret" not in client.get(url).content.decode()


def test_environment_credentials_are_shown_read_only(client, msp_user, settings):
    made = certificate(0)
    settings.PORTAL_PARTNER_APP = {"client_id": PARTNER_ID, "display_name": "From env",
                                   "certificate_pem": made.private_key_pem + made.certificate_pem}
    client.force_login(msp_user)
    response = client.get(LIST)
    text = response.content.decode()
    assert response.status_code == 200 and "From env" in text and made.thumbprint in text
    assert "PRIVATE KEY" not in text and "PORTAL_PARTNER_CERTIFICATE_FILE" in text
    assert client.get(reverse("admin:portal_partnerapplication_add")).status_code == 403
    assert not PartnerApplication.objects.exists()


def test_expiry_warning_on_the_admin_and_the_dashboard(client, msp_user):
    app = partner_app(certificates=())
    add_secret(app, days=10)
    client.force_login(msp_user)
    page = client.get(reverse("admin:portal_partnerapplication_change", args=[app.pk])).content.decode()
    assert "The last valid credential of the partner application expires" in page
    dashboard = client.get(reverse("admin:index")).content.decode()
    assert "The last valid credential of the partner application expires" in dashboard


def test_expiry_emails_go_to_msp_admins_on_the_warning_days(msp_user, msp_admin, tenant_a):
    app = partner_app(certificates=())
    now = timezone.now()
    PartnerCredential.objects.create(application=app, kind="secret", secret_value="s~1234567",
                                     expires_at=now + datetime.timedelta(days=14, hours=1))
    member(tenant_a, "admin")  # a customer's admin hears nothing of the MSP's app
    counters = check_secret_expiry(now=now)
    assert counters["partner_warnings"] == 1
    sent = [m for m in mail.outbox if "partner application" in m.subject]
    assert len(sent) == 1 and sorted(sent[0].to) == ["msp-admin@example.com", "msp@example.com"]
    assert "14 days" in sent[0].subject and "s~1234567" not in sent[0].body
    mail.outbox.clear()
    assert check_secret_expiry(now=now + datetime.timedelta(days=1))["partner_warnings"] == 0
