"""MFA (allauth.mfa) for password sign-ins, required for MSP staff when PORTAL_REQUIRE_MFA is on."""

import datetime
import re

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from axes.models import AccessAttempt
from django.core.cache import cache
from django.utils import timezone
from knox.models import AuthToken

from tests.signin.helpers import PASSWORD, sign_in, signed_in
from tests.signin.sso import TENANT, sign_in_with_microsoft
from tests.signin.totp import totp

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _require_mfa(settings):
    settings.PORTAL_REQUIRE_MFA = True
    # One period either side, so a test can use the next period's code rather than wait for it
    # (a TOTP code is accepted once only).
    settings.MFA_TOTP_TOLERANCE = 1


def enrol_totp(client):
    """Set up TOTP from the page staff are sent to; returns the secret.

    allauth asks for the password once more before MFA changes (MFA_REAUTHENTICATION_REQUIRED).
    """
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/")
    assert client.post(page["Location"], {"password": PASSWORD}).status_code == 302
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page.content.decode()  # shown for typing into an app, beside the QR code
    done = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert done.status_code == 302, done.content.decode()[:2000]
    return secret


def test_staff_without_mfa_are_walked_through_setup_at_first_sign_in(client, msp_user):
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 302
    admin = client.get("/admin/")
    assert admin.status_code == 302 and admin["Location"] == "/accounts/2fa/totp/activate/?next=%2Fadmin%2F"
    assert client.get("/admin/tenancy/tenant/").status_code == 302  # every page, not only the index
    assert client.get("/api/v1/tenants/", HTTP_ACCEPT="application/json").status_code == 403
    enrol_totp(client)
    assert Authenticator.objects.filter(user=msp_user, type=Authenticator.Type.TOTP).exists()
    assert Authenticator.objects.filter(user=msp_user, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert client.get("/admin/").status_code == 200


def test_what_a_page_loads_does_not_replace_the_secret_being_set_up(client, msp_user):
    """allauth makes a new TOTP secret each time the set-up page is opened; the browser's favicon request (or any
    image, script or fetch of a page without MFA) must not be sent there, or the secret the person just scanned
    is replaced behind their back and their code refused (what made the browser test flaky)."""
    sign_in(client, "account", "msp", PASSWORD)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    favicon = client.get("/favicon.ico", HTTP_SEC_FETCH_DEST="image")
    assert favicon.status_code == 301 and favicon["Location"] == "/static/portal/favicon.svg"
    image = client.get("/admin/", HTTP_SEC_FETCH_DEST="image", follow=True)
    assert image.status_code == 403 and not image.redirect_chain
    assert client.session[SECRET_SESSION_KEY] == secret
    navigation = client.get("/admin/", HTTP_SEC_FETCH_DEST="document")
    assert navigation.status_code == 302 and navigation["Location"].startswith("/accounts/2fa/totp/activate/")
    assert client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)}).status_code == 302


def test_a_password_then_a_code(client, msp_user):
    sign_in(client, "account", "msp", PASSWORD)
    secret = enrol_totp(client)
    client.logout()
    answer = sign_in(client, "account", "msp", PASSWORD)
    assert answer.status_code == 302 and answer["Location"] == "/accounts/2fa/authenticate/"
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000" if totp(secret, 1) != "000000" else "111111"})
    assert wrong.status_code == 200 and not signed_in(client)
    assert client.post("/accounts/2fa/authenticate/", {"code": totp(secret, 1)}).status_code == 302
    assert signed_in(client) and client.get("/admin/").status_code == 200


def test_a_recovery_code_works_once(client, msp_user):
    sign_in(client, "account", "msp", PASSWORD)
    enrol_totp(client)
    codes = Authenticator.objects.get(user=msp_user, type=Authenticator.Type.RECOVERY_CODES).wrap().get_unused_codes()
    client.logout()
    sign_in(client, "account", "msp", PASSWORD)
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    assert signed_in(client)
    client.logout()
    sign_in(client, "account", "msp", PASSWORD)
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 200
    assert not signed_in(client)


def test_the_admin_login_leads_to_the_same_flow(client, msp_user):
    answer = client.get("/admin/login/?next=/admin/devices/computer/")
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/login/?next=%2Fadmin%2Fdevices%2Fcomputer%2F"
    # An offsite next is dropped.
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    # A password posted to the admin's old form signs nobody in.
    assert client.post("/admin/login/", {"username": "msp", "password": PASSWORD}).status_code == 302
    assert not signed_in(client)


def test_api_tokens_are_not_affected(client, msp_user):
    _, token = AuthToken.objects.create(msp_user)
    answer = client.get("/api/v1/tenants/", HTTP_AUTHORIZATION="Token " + token)
    assert answer.status_code == 200


def test_customer_admins_are_not_forced(client, admin_a):
    assert sign_in(client, "account", admin_a.username, PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_microsoft_sign_ins_leave_mfa_to_entra(client, simulator, entra, msp_user):
    msp_user.email = "msp@msp.example"
    msp_user.save()
    entra.register_user(TENANT, "msp@msp.example")
    assert sign_in_with_microsoft(client, simulator, "msp@msp.example").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_off_in_development_unless_turned_on(client, msp_user, settings):
    settings.PORTAL_REQUIRE_MFA = False
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_setup_page_shows_a_qr_code(client, msp_user):
    sign_in(client, "account", "msp", PASSWORD)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    assert re.search(r'src="data:image/svg\+xml;base64,', page)


def wrong_code(secret):
    """A code that is not valid now, nor in the step before or after."""
    valid = {totp(secret, offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def test_wrong_codes_are_limited_then_even_the_right_one_is_refused(client, msp_user, settings):
    """Five wrong codes: allauth refuses the sixth code, the right one included (its "login_failed" limit, per
    user), and axes counts each wrong code like a wrong password, in the database, so the account is locked at
    the password step for the cool-off in every worker (another worker's empty cache changes nothing)."""
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.PORTAL_TRUSTED_PROXIES = 0
    sign_in(client, "account", "msp", PASSWORD)
    secret = enrol_totp(client)
    client.logout()
    assert sign_in(client, "account", "msp", PASSWORD)["Location"] == "/accounts/2fa/authenticate/"
    answers = [
        client.post("/accounts/2fa/authenticate/", {"code": wrong_code(secret)}, REMOTE_ADDR="198.51.100.7")
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]  # the fifth: axes' lockout page
    assert b"Too many failed sign-in attempts" in answers[-1].content
    assert AccessAttempt.objects.get(username="msp").failures_since_start == 5
    right = client.post("/accounts/2fa/authenticate/", {"code": totp(secret)}, REMOTE_ADDR="198.51.100.7")
    assert right.status_code == 200 and b"Too many failed login attempts" in right.content
    assert not signed_in(client)

    cache.clear()  # another worker, or allauth's 5 minutes passed: axes' count in the database still holds
    client.logout()
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 429
    assert not signed_in(client)

    # After the cool-off: the password and the right code sign in.
    AccessAttempt.objects.update(attempt_time=timezone.now() - datetime.timedelta(minutes=16))
    assert sign_in(client, "account", "msp", PASSWORD)["Location"] == "/accounts/2fa/authenticate/"
    assert client.post("/accounts/2fa/authenticate/", {"code": totp(secret)}).status_code == 302
    assert signed_in(client)


def test_reauthentication_codes_are_limited_too(client, msp_user):
    """allauth asks for a code (or the password) again before MFA changes: the same limit applies there."""
    sign_in(client, "account", "msp", PASSWORD)
    secret = enrol_totp(client)
    client.logout()
    sign_in(client, "account", "msp", PASSWORD)
    client.post("/accounts/2fa/authenticate/", {"code": totp(secret, 1)})
    assert signed_in(client)
    for _ in range(5):
        client.post("/accounts/2fa/reauthenticate/", {"code": wrong_code(secret)})
    refused = client.post("/accounts/2fa/reauthenticate/", {"code": totp(secret)})
    assert refused.status_code == 200 and b"Too many failed login attempts" in refused.content
    assert AccessAttempt.objects.get(username="msp").failures_since_start == 5
