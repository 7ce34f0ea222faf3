"""The landing pages in headless Chromium with JavaScript off: each kind, hints, 404; screenshots in test-results/."""

import pytest

from tests.browser.pages import visit
from tests.factories import ComputerFactory, TenantFactory

pytestmark = pytest.mark.browser

LOGO = "https://cdn.contoso.example/logo.svg"


@pytest.fixture
def contoso(transactional_db):
    return TenantFactory(
        slug="contoso",
        name="Contoso Ltd",
        landing_page="registration",
        jamf_enrollment_url="https://contoso.jamfcloud.example/enroll",
        self_service_registration_url="jamfselfservice://content?entity=policy&id=12&action=view",
        support_contact="IT help desk, help@contoso.example, +1 555 0100",
        logo_url=LOGO,
    )


@pytest.fixture
def fabrikam(transactional_db):
    return TenantFactory(
        slug="fabrikam",
        name="Fabrikam Inc",
        landing_page="access_denied",
        support_contact="Service desk, desk@fabrikam.example",
    )


@pytest.fixture
def northwind(transactional_db):
    return TenantFactory(
        slug="northwind", name="Northwind Traders", landing_page="custom", landing_custom_url="https://support.northwind.example/mac"
    )


@pytest.fixture
def open_page(browser, live_server):
    def open_page(path, name, **kwargs):
        return browser.run(visit, live_server.url + path, name, local_origin=live_server.url, logo_url=LOGO, **kwargs)

    return open_page


def assert_accessible(report):
    assert report.info["lang"] == "en"
    assert report.info["styled"], "the stylesheet did not load (CSP or static files)"
    # A CSP violation or a missing resource would show here; the page's own 403 / 404 status does too.
    own_status = "Failed to load resource: the server responded with a status of %d" % report.status
    assert [error for error in report.console_errors if not error.startswith(own_status)] == []
    assert report.contrast_failures == []
    assert all(image["alt"] for image in report.info["images"])
    assert all(link["text"] for link in report.info["links"])


def test_registration_page(open_page, contoso):
    report = open_page("/r/contoso/", "landing-registration")
    assert report.status == 200
    assert report.info["h1"] == "Register your Mac to continue"
    assert report.info["title"] == "Register your Mac · Contoso Ltd"
    assert report.info["sections"] == ["enroll", "self-service"]
    links = {link["text"]: link["href"] for link in report.info["links"]}
    assert links["Enroll this Mac"] == "https://contoso.jamfcloud.example/enroll"
    assert links["Open Self Service"] == "jamfselfservice://content?entity=policy&id=12&action=view"
    assert links["help@contoso.example"] == "mailto:help@contoso.example"
    assert "AccountNotOnboarded" in report.info["text"]
    assert report.info["images"] == [{"alt": "Contoso Ltd logo", "loaded": True}]
    assert report.offsite == [LOGO]
    assert_accessible(report)


def test_registration_page_dark_and_narrow(open_page, contoso):
    dark = open_page("/r/contoso/", "landing-registration-dark", color_scheme="dark")
    assert_accessible(dark)
    phone = open_page("/r/contoso/", "landing-registration-phone", width=390)
    assert_accessible(phone)
    assert not phone.info["overflow"]


def test_hint_of_an_enrolled_mac_puts_self_service_first(open_page, contoso):
    mac = ComputerFactory(tenant=contoso, name="Dana's MacBook", serial_number="C02CONTOSO01")
    report = open_page("/r/contoso/?serial=C02CONTOSO01", "landing-registration-enrolled-hint")
    assert report.status == 200
    assert report.info["sections"] == ["self-service", "enroll"]
    assert report.info["h1"] == "Register your Mac to continue"
    assert mac.name not in report.info["text"] and mac.serial_number not in report.info["text"]
    assert_accessible(report)


def test_hint_from_another_tenant_changes_nothing(open_page, contoso, fabrikam):
    ComputerFactory(tenant=fabrikam, serial_number="C02FABRIKAM1")
    default = open_page("/r/contoso/", "landing-registration")
    report = open_page("/r/contoso/?serial=C02FABRIKAM1", "landing-registration-foreign-hint")
    assert report.status == 200
    assert report.info["sections"] == ["enroll", "self-service"]
    assert report.info["text"] == default.info["text"]


def test_access_denied_page(open_page, fabrikam):
    report = open_page("/r/fabrikam/", "landing-access-denied")
    assert report.status == 403
    assert report.info["h1"] == "Access denied"
    assert "Fabrikam Inc does not allow this Mac" in report.info["text"]
    assert "desk@fabrikam.example" in report.info["text"]
    assert report.info["sections"] == []
    assert_accessible(report)


def test_custom_page_redirects_to_the_configured_url_only(open_page, live_server, northwind, offsite_site):
    northwind.landing_custom_url = offsite_site.url + "/mac/help"
    northwind.save()
    query = "?next=https://evil.example/&url=//evil.example"
    report = open_page("/r/northwind/" + query, "landing-custom")
    assert report.redirects == [(302, live_server.url + "/r/northwind/" + query)]
    assert report.url == offsite_site.url + "/mac/help"
    assert offsite_site.paths[0] == "/mac/help"  # nothing from the request was carried along
    assert report.info["h1"] == "The tenant's own page (stub)"


def test_remediation_page(open_page, contoso):
    report = open_page("/r/contoso/remediation/", "landing-remediation")
    assert report.status == 200
    assert report.info["h1"] == "Make your Mac compliant"
    assert "What your Mac needs" in report.info["text"]
    assert_accessible(report)


def test_unknown_tenant_is_a_plain_404(open_page, contoso):
    report = open_page("/r/no-such-tenant/", "landing-404")
    assert report.status == 404
    assert report.info["h1"] == "Page not found"
    assert "Contoso" not in report.info["text"]
    assert_accessible(report)
