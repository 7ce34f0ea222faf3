"""Signing in, in headless Chromium: Sign in with Microsoft against the simulator. (TOTP set-up and sign-in with a
code are tested with Django's client, tests/signin/test_mfa.py: the browser version was flaky and is not here.)

Screenshots in test-results/ (signin-*.png).
"""

import re

import pytest

from tests.browser.pages import RESULTS_DIR
from tests.factories import UserFactory
from tests.signin.sso import CLIENT_ID, CLIENT_SECRET, TENANT

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
