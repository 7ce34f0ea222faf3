"""The landing pages at /r/<slug>/: each kind, the 404, the redirect target, hints, headers, queries."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal import landing, tenancy
from portal.models import Tenant
from tests.conftest import member
from tests.factories import ComputerFactory, TenantFactory

ENROLL_URL = "https://alpha.jamfcloud.example/enroll"
SELF_SERVICE_URL = "jamfselfservice://content?entity=policy&id=12&action=view"


@pytest.fixture
def alpha(db):
    return TenantFactory(
        name="Alpha Corp",
        slug="alpha",
        jamf_enrollment_url=ENROLL_URL,
        self_service_registration_url=SELF_SERVICE_URL,
        support_contact="Alpha help desk, help@alpha.example",
        logo_url="https://cdn.alpha.example/logo.png",
    )


@pytest.fixture
def bravo(db):
    return TenantFactory(name="Bravo Inc", slug="bravo", jamf_enrollment_url="https://bravo.example/enroll")


def text(response):
    return response.content.decode()


def first_path(response):
    """Which registration path the page puts first: 'enroll' or 'self-service'."""
    body = text(response)
    return "enroll" if body.index('id="enroll"') < body.index('id="self-service"') else "self-service"


# -- Each kind -------------------------------------------------------------------------------------


def test_registration_page_is_the_default_and_branded(client, alpha):
    response = client.get("/r/alpha/")
    assert response.status_code == 200
    body = text(response)
    assert "Alpha Corp" in body
    assert 'src="https://cdn.alpha.example/logo.png"' in body and 'alt="Alpha Corp logo"' in body
    assert 'href="mailto:help@alpha.example"' in body
    assert 'href="%s"' % ENROLL_URL in body
    assert 'href="jamfselfservice://content?entity=policy&amp;id=12&amp;action=view"' in body
    assert "AccountNotOnboarded" in body
    assert 'href="/r/alpha/remediation/"' in body
    assert first_path(response) == "enroll"


def test_registration_page_without_links_tells_the_user_where_to_go(client, db):
    TenantFactory(slug="bare", name="Bare", jamf_enrollment_url="", self_service_registration_url="")
    body = text(client.get("/r/bare/"))
    assert "Ask IT support for the enrollment page" in body
    assert "Open Self Service from your Applications folder" in body
    assert "jamfselfservice://" not in body


def test_access_denied_is_a_branded_403(client, alpha):
    Tenant.objects.filter(pk=alpha.pk).update(landing_page="access_denied")
    response = client.get("/r/alpha/")
    assert response.status_code == 403
    body = text(response)
    assert "Access denied" in body and "Alpha Corp" in body and "help@alpha.example" in body
    assert ENROLL_URL not in body and "jamfselfservice" not in body


def test_custom_redirects_only_to_the_configured_url(client, alpha):
    alpha.landing_page = "custom"
    alpha.landing_custom_url = "https://support.alpha.example/mac"
    alpha.save()
    for query in ("", "?next=https://evil.example/", "?url=https://evil.example/&redirect=//evil.example"):
        response = client.get("/r/alpha/" + query, HTTP_HOST="127.0.0.1", HTTP_REFERER="https://evil.example/")
        assert response.status_code == 302
        assert response["Location"] == "https://support.alpha.example/mac"


def test_custom_url_must_be_https_when_saved_through_validation(alpha):
    alpha.landing_page = "custom"
    alpha.landing_custom_url = "http://support.alpha.example/mac"
    with pytest.raises(ValidationError) as excinfo:
        alpha.full_clean()
    assert "landing_custom_url" in excinfo.value.message_dict
    alpha.landing_custom_url = ""
    with pytest.raises(ValidationError):
        alpha.full_clean()


@pytest.mark.parametrize("stored", ["http://support.alpha.example/mac", "javascript:alert(1)", "//evil.example/", ""])
def test_custom_url_that_bypassed_validation_never_becomes_a_redirect(client, alpha, stored):
    Tenant.objects.filter(pk=alpha.pk).update(landing_page="custom", landing_custom_url=stored)
    response = client.get("/r/alpha/")
    assert response.status_code == 200  # the registration page instead
    assert "Location" not in response
    assert "AccountNotOnboarded" in text(response)


def test_remediation_page_is_branded_and_explains_the_rules(client, alpha):
    response = client.get("/r/alpha/remediation/")
    assert response.status_code == 200
    body = text(response)
    assert "Make your Mac compliant" in body and "Alpha Corp" in body and "help@alpha.example" in body
    assert body.count('<li><strong class="rule">') == len(landing.remediation_items(alpha.pk)) > 0


def test_remediation_is_served_whatever_the_landing_choice(client, alpha):
    Tenant.objects.filter(pk=alpha.pk).update(landing_page="access_denied")
    assert client.get("/r/alpha/remediation/").status_code == 200


# -- 404 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/r/nobody/", "/r/nobody/remediation/"])
def test_unknown_tenant_is_a_plain_404(client, alpha, path):
    response = client.get(path)
    assert response.status_code == 404
    body = text(response)
    assert "Page not found" in body
    assert "Alpha" not in body and "jamfselfservice" not in body
    assert "Content-Security-Policy" in response


def test_inactive_tenant_answers_exactly_like_an_unknown_one(client, alpha):
    unknown = client.get("/r/nobody/")
    Tenant.objects.filter(pk=alpha.pk).update(is_active=False)
    for path in ("/r/alpha/", "/r/alpha/remediation/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.content == unknown.content


def test_only_get_and_head(client, alpha):
    assert client.head("/r/alpha/").status_code == 200
    assert client.post("/r/alpha/").status_code == 405


# -- Headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/r/alpha/", "/r/alpha/remediation/", "/r/nobody/"])
def test_security_and_cache_headers(client, alpha, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "public, max-age=60"
    assert not response.cookies


def test_csp_allows_only_the_tenants_logo_origin(client, alpha, bravo):
    assert "img-src 'self' https://cdn.alpha.example;" in client.get("/r/alpha/")["Content-Security-Policy"]
    assert "img-src 'self';" in client.get("/r/bravo/")["Content-Security-Policy"]


def test_csp_takes_only_host_and_port_of_the_logo_url(client, alpha):
    Tenant.objects.filter(pk=alpha.pk).update(logo_url="https://x;script-src@cdn.alpha.example:8443/logo.png")
    csp = client.get("/r/alpha/")["Content-Security-Policy"]
    assert "img-src 'self' https://cdn.alpha.example:8443;" in csp
    assert "script-src" not in csp


def test_custom_redirect_headers(client, alpha):
    Tenant.objects.filter(pk=alpha.pk).update(landing_page="custom", landing_custom_url="https://x.alpha.example/")
    response = client.get("/r/alpha/")
    assert response["Cache-Control"] == "public, max-age=60"
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_signed_in_user_gets_the_same_public_page(client, alpha, msp_user):
    anonymous = client.get("/r/alpha/")
    client.force_login(msp_user)
    response = client.get("/r/alpha/")
    assert response.content == anonymous.content
    assert response["Cache-Control"] == "public, max-age=60"
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies


# -- Device hints ----------------------------------------------------------------------------------


@pytest.fixture
def alpha_mac(alpha):
    return ComputerFactory(
        tenant=alpha,
        name="Dana's MacBook Pro",
        serial_number="C02ALPHA0001",
        udid="5A1B2C3D-0000-4000-8000-00000000A001",
        entra_device_id="0d6f2a3b-1111-4222-8333-444455556666",
    )


@pytest.mark.parametrize(
    "query",
    [
        "?serial=C02ALPHA0001",
        "?serialNumber=c02alpha0001",
        "?udid=5A1B2C3D-0000-4000-8000-00000000A001",
        "?udid=5a1b2c3d-0000-4000-8000-00000000a001",
        "?deviceId=0d6f2a3b-1111-4222-8333-444455556666",
        "?device=0D6F2A3B-1111-4222-8333-444455556666",
    ],
)
def test_hint_of_an_enrolled_mac_shows_self_service_first(client, alpha_mac, query):
    response = client.get("/r/alpha/" + query)
    assert response.status_code == 200
    assert first_path(response) == "self-service"
    body = text(response)
    for detail in (alpha_mac.name, alpha_mac.serial_number, alpha_mac.udid, alpha_mac.entra_device_id, "Dana"):
        assert detail.lower() not in body.lower()


def test_hint_variant_is_never_stored_by_a_shared_cache(client, alpha_mac):
    for query in ("?serial=C02ALPHA0001", "?serial=UNKNOWN000", "?serial=%3Cscript%3E"):
        response = client.get("/r/alpha/" + query)
        assert response["Cache-Control"] == "private, max-age=60"
        assert response["Referrer-Policy"] == "no-referrer"


def test_hint_of_another_tenants_mac_changes_nothing(client, alpha, bravo):
    ComputerFactory(tenant=bravo, serial_number="C02BRAVO0001", entra_device_id="0d6f2a3b-9999-4222-8333-444455556666")
    default = client.get("/r/alpha/")
    for query in ("?serial=C02BRAVO0001", "?deviceId=0d6f2a3b-9999-4222-8333-444455556666"):
        response = client.get("/r/alpha/" + query)
        assert response.status_code == 200
        assert response.content == default.content


@pytest.mark.parametrize(
    "changes", [{"managed": False}, {"retired_at": timezone.now() - datetime.timedelta(days=1)}]
)
def test_hint_of_an_unmanaged_or_retired_mac_shows_the_default_page(client, alpha_mac, changes):
    type(alpha_mac).objects.filter(pk=alpha_mac.pk).update(**changes)
    default = client.get("/r/alpha/")
    assert client.get("/r/alpha/?serial=C02ALPHA0001").content == default.content


@pytest.mark.parametrize("value", ["", "x", "' OR 1=1 --", "a" * 65, "C02ALPHA0001%00"])
def test_malformed_hint_is_ignored_without_a_query(client, alpha_mac, value, django_assert_num_queries):
    client.get("/r/alpha/")  # warm the tenant cache
    with django_assert_num_queries(0):
        response = client.get("/r/alpha/", {"serial": value})
    assert first_path(response) == "enroll"


def test_hint_on_other_landing_kinds_changes_nothing(client, alpha_mac):
    Tenant.objects.filter(pk=alpha_mac.tenant_id).update(landing_page="access_denied")
    response = client.get("/r/alpha/?serial=C02ALPHA0001")
    assert response.status_code == 403 and "Self Service" not in text(response)


# -- Cost per request ------------------------------------------------------------------------------


def test_no_query_per_request_once_the_tenant_is_cached(client, alpha, django_assert_num_queries):
    with django_assert_num_queries(1):
        client.get("/r/alpha/")
    with django_assert_num_queries(1):  # the tenant's policies, once
        client.get("/r/alpha/remediation/")
    with django_assert_num_queries(0):
        for path in ("/r/alpha/", "/r/alpha/", "/r/alpha/remediation/"):
            assert client.get(path).status_code == 200


def test_unknown_slugs_are_cached_too(client, db, django_assert_num_queries):
    client.get("/r/nobody/")
    with django_assert_num_queries(0):
        assert client.get("/r/nobody/").status_code == 404


def test_a_hint_costs_one_query(client, alpha_mac, django_assert_num_queries):
    client.get("/r/alpha/")
    with django_assert_num_queries(1):
        client.get("/r/alpha/?serial=C02ALPHA0001")


def test_saving_the_tenant_refreshes_the_cached_page(client, alpha):
    assert "Alpha Corp" in text(client.get("/r/alpha/"))
    alpha.name = "Alpha Renamed"
    alpha.save()
    assert "Alpha Renamed" in text(client.get("/r/alpha/"))
    alpha.landing_page = "access_denied"
    alpha.save()
    assert client.get("/r/alpha/").status_code == 403


def test_creating_a_tenant_clears_a_cached_404(client, db):
    assert client.get("/r/late/").status_code == 404
    TenantFactory(slug="late", name="Late Ltd")
    assert client.get("/r/late/").status_code == 200


# -- Preview for the tenant's own staff ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["registration", "registration-enrolled", "access-denied", "remediation"])
def test_preview_shows_any_kind_to_members(client, alpha, kind):
    client.force_login(member(alpha, tenancy.VIEWER))
    response = client.get("/r/alpha/preview/%s/" % kind)
    assert response.status_code == (403 if kind == "access-denied" else 200)
    assert "Alpha Corp" in text(response)
    assert response["Cache-Control"] == "private, no-store"


def test_preview_is_a_404_for_anyone_else(client, alpha, tenant_b, admin_b):
    assert client.get("/r/alpha/preview/registration/").status_code == 404
    client.force_login(admin_b)
    response = client.get("/r/alpha/preview/registration/")
    assert response.status_code == 404 and "Alpha" not in text(response)
    assert client.get("/r/alpha/preview/nonsense/").status_code == 404


def test_landing_urls_for_intune(alpha, settings):
    settings.PORTAL_BASE_URL = "https://portal.msp.example"
    assert landing.landing_urls(alpha) == {
        "enrollment": "https://portal.msp.example/r/alpha/",
        "remediation": "https://portal.msp.example/r/alpha/remediation/",
    }
