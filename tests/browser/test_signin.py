"""Signing in, in headless Chromium: Sign in with Microsoft against the simulator, and MFA for a password sign-in
(an authenticator app set up at the first sign-in, then a code at the next; recovery codes; a security key through
Chromium's virtual authenticator).

An earlier version of the TOTP test failed now and then. Its activation code was refused because the browser's
favicon request was redirected to the set-up page, which made a new secret (fixed in signin/middleware.py, tested
in tests/signin/test_mfa.py). And it read ``page.url`` after a click and ``wait_for_load_state``, which returns at
once while the old page is still shown: here every submit waits for the answer to its own POST
(``expect_navigation``). Codes are computed from the secret on the page (RFC 6238, tests/signin/totp.py) with the
production tolerance of 0, each for a 30 s step of its own (allauth accepts a code once).

Screenshots in test-results/ (signin-*.png).
"""

import re
import time
import urllib.parse

import pytest

from tests.browser.pages import RESULTS_DIR
from tests.factories import UserFactory
from tests.signin.sso import CLIENT_ID, CLIENT_SECRET, TENANT
from tests.signin.totp import totp

pytestmark = pytest.mark.browser

PASSWORD = "pw-for-tests-1"  # tests/factories.py UserFactory


def new_page(browser, errors):
    # The simulator's certificate is its own: trusted here as the portal trusts it through PORTAL_CA_BUNDLE.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and not r.url.endswith("/favicon.ico") and errors.append("%s %s" % (r.status, r.url))
        ),
    )
    return context, page


def shot(page, name):
    page.screenshot(path=str(RESULTS_DIR / ("signin-%s.png" % name)), full_page=True)


def microsoft_sign_in(browser, base_url, upn):
    errors = []
    context, page = new_page(browser, errors)
    try:
        page.goto(base_url + "/admin/")
        assert "/accounts/login/" in page.url
        shot(page, "login")
        page.get_by_role("button", name="Sign in with Microsoft").click()
        page.wait_for_url(re.compile(r"https://127\.0\.0\.1:\d+/oidc/"))
        shot(page, "entra")
        page.fill("#upn", upn)
        page.click("#signin")
        page.wait_for_url(base_url + "/admin/")
        shot(page, "microsoft-done")
        return {"url": page.url, "header": page.locator("#user-tools").inner_text(), "errors": errors}
    finally:
        context.close()


def test_sign_in_with_microsoft_end_to_end(browser, live_server, simulator, settings):
    from portal.settings import sso_providers
    from simulator.oidc import OidcService

    entra = simulator.service(OidcService)
    entra.register_client(TENANT, CLIENT_ID, CLIENT_SECRET, [live_server.url + "/accounts/entra/login/callback/"])
    entra.register_user(TENANT, "megan.bowen@msp.example", name="Megan Bowen")
    settings.PORTAL_SSO_TENANT_ID = TENANT
    settings.SOCIALACCOUNT_PROVIDERS = sso_providers(TENANT, CLIENT_ID, CLIENT_SECRET, simulator.base_url + "/oidc")
    UserFactory(username="megan", email="megan.bowen@msp.example", is_superuser=True, is_staff=True)
    report = browser.run(microsoft_sign_in, live_server.url, "megan.bowen@msp.example")
    assert report["url"] == live_server.url + "/admin/"
    assert "MEGAN" in report["header"].upper()
    assert report["errors"] == []
    assert entra.issued and entra.issued[-1]["tid"] == TENANT


def at(path):
    """A ``wait_for_url`` matcher: the page at ``path`` (any query)."""
    return lambda url: urllib.parse.urlsplit(url).path == path


def click_and_wait(page, locator, path):
    """Submit with ``locator`` and wait for the page the form leads to (the answer to this very POST, even when it
    has the URL the form was on); returns its path, which must be ``path``."""
    with page.expect_navigation():
        locator.click()
    page.wait_for_load_state("load")
    reached = urllib.parse.urlsplit(page.url).path
    if reached != path:
        shot(page, "unexpected")
    assert reached == path, "%s instead of %s" % (page.url, path)
    return reached


def sign_in_with_password(page, base_url, username):
    page.goto(base_url + "/admin/")
    page.wait_for_url(at("/accounts/login/"))
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)


def sign_out(page, base_url):
    """The admin's own "Log out" button; then the session cookie is gone and /admin/ asks for a sign-in again."""
    page.goto(base_url + "/admin/")
    page.wait_for_url(at("/admin/"))
    click_and_wait(page, page.locator("#logout-form button"), "/admin/logout/")
    assert not [c for c in page.context.cookies() if c["name"] == "sessionid"], page.context.cookies()


def fresh_code(secret, used_steps):
    """The authenticator app's code, as a person reads it: for a 30 s step not used before (allauth accepts a code
    once), with most of the step still ahead so it reaches the portal within it (the production tolerance is 0).
    """
    while True:
        now = time.time()
        step, elapsed = divmod(now, 30)
        if step not in used_steps and elapsed < 20:
            used_steps.add(step)
            return totp(secret)
        time.sleep(30 - elapsed + 0.2)


def enrol_totp_then_sign_in_with_codes(browser, base_url):
    errors, steps = [], []
    used_steps = set()
    context, page = new_page(browser, errors)
    try:
        # First sign-in: the password, which leads straight to setting up an authenticator app, after the
        # password once more (allauth asks for it before any MFA change).
        sign_in_with_password(page, base_url, "msp")
        click_and_wait(page, page.get_by_role("button", name="Sign In"), "/accounts/reauthenticate/")
        page.fill("#id_password", PASSWORD)
        click_and_wait(page, page.get_by_role("button", name="Confirm"), "/accounts/2fa/totp/activate/")
        steps.append(page.url)
        secret = page.locator("#authenticator_secret").input_value()
        shot(page, "totp-enrol")
        page.fill("#id_code", fresh_code(secret, used_steps))
        click_and_wait(page, page.get_by_role("button", name="Activate"), "/accounts/2fa/recovery-codes/")
        recovery_codes = page.locator("#recovery_codes").input_value().split()
        shot(page, "recovery-codes")
        click_and_wait(page, page.get_by_role("link", name="Continue to the portal"), "/admin/")
        steps.append(page.url)
        sign_out(page, base_url)

        # Next sign-in: the password, then a code from the app.
        sign_in_with_password(page, base_url, "msp")
        click_and_wait(page, page.get_by_role("button", name="Sign In"), "/accounts/2fa/authenticate/")
        shot(page, "totp-code")
        says_recovery_codes_work = page.get_by_text("Enter one of your recovery codes").is_visible()
        page.goto(base_url + "/admin/")  # nothing opens before the code: back to it
        page.wait_for_load_state("load")
        steps.append(page.url)
        page.fill("#id_code", fresh_code(secret, used_steps))
        click_and_wait(page, page.get_by_role("button", name="Sign In"), "/admin/")
        steps.append(page.url)
        sign_out(page, base_url)

        # A recovery code instead of the app's code: once.
        recovery = []
        for _ in range(2):
            sign_in_with_password(page, base_url, "msp")
            click_and_wait(page, page.get_by_role("button", name="Sign In"), "/accounts/2fa/authenticate/")
            page.fill("#id_code", recovery_codes[0])
            with page.expect_navigation():
                page.get_by_role("button", name="Sign In").click()
            page.wait_for_load_state("load")
            recovery.append(urllib.parse.urlsplit(page.url).path)
            if recovery[-1] == "/admin/":
                sign_out(page, base_url)
            else:
                recovery.append(page.locator(".errorlist").inner_text())
                shot(page, "recovery-code-used")
        return {"steps": steps, "recovery_codes": recovery_codes, "recovery": recovery, "errors": errors,
                "says_recovery_codes_work": says_recovery_codes_work}
    finally:
        context.close()


def test_enrol_totp_at_first_sign_in_then_sign_in_with_a_code(browser, live_server, settings, transactional_db):
    settings.PORTAL_REQUIRE_MFA = True
    settings.MFA_TOTP_TOLERANCE = 0  # production's: no step before or after
    UserFactory(username="msp", is_superuser=True, is_staff=True)
    report = browser.run(enrol_totp_then_sign_in_with_codes, live_server.url, timeout=300)
    url = live_server.url
    assert report["steps"] == [
        url + "/accounts/2fa/totp/activate/?next=%2Fadmin%2F",  # the first sign-in is sent to set MFA up
        url + "/admin/",  # ...and then opens the admin
        url + "/accounts/2fa/authenticate/",  # the next sign-in stops before the code
        url + "/admin/",  # ...until it is given
    ]
    assert len(report["recovery_codes"]) == 10
    assert report["recovery"][0] == "/admin/"  # a recovery code signs in once
    assert report["recovery"][1:] == ["/accounts/2fa/authenticate/", "Incorrect code."]
    assert report["says_recovery_codes_work"]  # the code page says a recovery code is taken there too
    assert report["errors"] == []


def add_virtual_security_key(page):
    """Chromium's virtual authenticator (DevTools WebAuthn domain): a USB security key that answers at once,
    as if touched. It keeps its credentials for the context's lifetime; returns its ID."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "usb",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    return cdp, cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]


def register_then_use_a_security_key(browser, base_url):
    errors, steps = [], []
    context, page = new_page(browser, errors)
    try:
        cdp, authenticator = add_virtual_security_key(page)
        # The first sign-in leads to setting up an authenticator app, which offers a security key instead.
        sign_in_with_password(page, base_url, "msp")
        click_and_wait(page, page.get_by_role("button", name="Sign In"), "/accounts/reauthenticate/")
        page.fill("#id_password", PASSWORD)
        click_and_wait(page, page.get_by_role("button", name="Confirm"), "/accounts/2fa/totp/activate/")
        add_key = page.get_by_role("link", name="Add a security key or passkey")
        click_and_wait(page, add_key, "/accounts/2fa/webauthn/add/")
        page.fill("#id_name", "Virtual key")
        shot(page, "webauthn-add")
        click_and_wait(page, page.locator("#mfa_webauthn_add"), "/accounts/2fa/recovery-codes/")
        steps.append(urllib.parse.urlsplit(page.url).path)
        credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        click_and_wait(page, page.get_by_role("link", name="Continue to the portal"), "/admin/")
        sign_out(page, base_url)

        sign_in_with_password(page, base_url, "msp")
        click_and_wait(page, page.get_by_role("button", name="Sign In"), "/accounts/2fa/authenticate/")
        click_and_wait(page, page.get_by_role("button", name="Use a security key"), "/admin/")
        steps.append(urllib.parse.urlsplit(page.url).path)
        used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        return {"steps": steps, "credentials": credentials, "used": used, "errors": errors}
    finally:
        context.close()


def test_register_a_security_key_then_sign_in_with_it(browser, live_server, settings, transactional_db):
    from allauth.mfa.models import Authenticator

    settings.PORTAL_REQUIRE_MFA = True
    user = UserFactory(username="msp", is_superuser=True, is_staff=True)
    report = browser.run(register_then_use_a_security_key, live_server.url)
    assert report["steps"] == ["/accounts/2fa/recovery-codes/", "/admin/"]
    assert len(report["credentials"]) == 1 and report["credentials"][0]["rpId"] == "localhost"
    assert report["used"][0]["signCount"] > report["credentials"][0]["signCount"]  # the key signed the sign-in
    key = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert key.wrap().name == "Virtual key"
    assert report["errors"] == []
