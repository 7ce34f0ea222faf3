"""Computers: scoping, filters, search, query counts, retire and resend, bad input."""

import datetime

import pytest
from django.utils import timezone

from devices.models import Computer
from tests.factories import ComputerFactory, UserAccountFactory

URL = "/api/v1/computers/"


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def fleet(tenant_a, tenant_b):
    now = timezone.now()
    return {
        "ok": ComputerFactory(tenant=tenant_a, name="Ada's MacBook", os_version="15.1", inventory_state=0,
                              compliance_status="compliant", registration_state="registered",
                              company_portal_version="5.2404.0", entra_device_id="aaaa-1111"),
        "old": ComputerFactory(tenant=tenant_a, name="Old iMac", os_version="13.6.9", inventory_state=2,
                               compliance_status="notCompliant", registration_state="not_started",
                               failed_rules=["os_version_too_old", "filevault_off"],
                               last_check_in=now - datetime.timedelta(days=5)),
        "ten": ComputerFactory(tenant=tenant_a, name="Ten", os_version="14.10", compliance_status="notCompliant",
                               registration_state="account_not_onboarded", company_portal_version="5.0",
                               failed_rules=["sip_off"]),
        "new": ComputerFactory(tenant=tenant_a, name="Unevaluated", os_version="weird"),
        "b": ComputerFactory(tenant=tenant_b, name="Bravo Mac", compliance_status="notCompliant"),
    }


def test_list_is_scoped_and_shows_users_and_failed_rules(api, admin_a, fleet):
    UserAccountFactory(computer=fleet["old"], username="ada", entra_user_id="u-1")
    client = api.as_user(admin_a)
    response = client.get(URL)
    assert ids(response) == {fleet[k].pk for k in ("ok", "old", "ten", "new")}
    old = client.get(URL + "%d/" % fleet["old"].pk).json()
    assert old["tenant"] == "alpha"
    assert old["inventory_state"] == "unresponsive" and old["inventory_state_code"] == 2
    assert [r["code"] for r in old["failed_rules"]] == ["filevault_off", "os_version_too_old"] or \
        {r["code"] for r in old["failed_rules"]} == {"filevault_off", "os_version_too_old"}
    assert all(r["sentence"] and r["remedy"] for r in old["failed_rules"])
    assert old["user_accounts"][0]["username"] == "ada"
    assert client.get(URL + "%d/" % fleet["b"].pk).status_code == 404


@pytest.mark.parametrize(
    "query, expected",
    [
        ("compliance=notCompliant", {"old", "ten"}),
        ("compliance=not_evaluated", {"new"}),
        ("compliance=compliant&compliance=not_evaluated", {"ok", "new"}),
        ("state=unresponsive", {"old"}),
        ("registration=account_not_onboarded", {"ten"}),
        ("smart_group=without_company_portal", {"old", "new"}),
        ("smart_group=registered", {"ok"}),
        ("company_portal=true", {"ok", "ten"}),
        ("company_portal=false", {"old", "new"}),
        ("failed_rule=sip_off", {"ten"}),
        ("os_version_min=14.9", {"ok", "ten"}),  # 14.10 > 14.9: numeric, not text
        ("os_version_max=14.9", {"old"}),
        ("os_version_min=14&os_version_max=14.99", {"ten"}),
        ("search=imac", {"old"}),
        ("search=AAAA-1111", {"ok"}),
        ("tenant=alpha&compliance=notCompliant", {"old", "ten"}),
    ],
)
def test_filters(api, admin_a, fleet, query, expected):
    response = api.as_user(admin_a).get(URL + "?" + query)
    assert ids(response) == {fleet[k].pk for k in expected}


def test_last_check_in_range(api, admin_a, fleet):
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    response = api.as_user(admin_a).get(URL, {"last_check_in_before": since})
    assert ids(response) == {fleet["old"].pk}


@pytest.mark.parametrize(
    "query, field",
    [
        ("state=sleepy", "state"),
        ("compliance=maybe", "compliance"),
        ("os_version_min=fifteen", "os_version_min"),
        ("last_check_in_after=yesterday", "last_check_in"),
        ("tenant=bravo", "tenant"),  # another tenant's slug is not a choice
        ("tenant_id=abc", "tenant_id"),
        ("tenant_id=26717444478687461376", "tenant_id"),  # found by schemathesis: an overflow, once a 500
        ("smart_group=nope", "smart_group"),
        ("cursor=bz1hYmM%3D", "cursor"),  # "o=abc": an offset that is not a number
        ("cursor=cD0x", None),  # decodes, but the position does not fit the ordering
    ],
)
def test_malformed_filters_are_400_naming_the_parameter(api, admin_a, fleet, query, field):
    response = api.as_user(admin_a).get(URL + "?" + query)
    assert response.status_code in (200, 400), response.content
    if field:
        assert response.status_code == 400
        assert field in response.json()


def test_cursor_pagination_walks_every_row_once_with_a_capped_page(api, admin_a, tenant_a, settings):
    settings.API_MAX_PAGE_SIZE = 4
    ComputerFactory.create_batch(10, tenant=tenant_a)
    client = api.as_user(admin_a)
    seen, url = [], URL + "?page_size=50"
    while url:
        body = client.get(url).json()
        assert len(body["results"]) <= 4
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(Computer.objects.values_list("id", flat=True)) and len(seen) == 10


def test_list_query_count_does_not_grow_with_the_page(api, admin_a, tenant_a, django_assert_max_num_queries):
    for computer in ComputerFactory.create_batch(30, tenant=tenant_a, failed_rules=["sip_off"]):
        UserAccountFactory.create_batch(2, computer=computer)
    client = api.as_user(admin_a)
    # auth (token, user's other tokens), scoping subquery inline, page, prefetch users, plus margin
    with django_assert_max_num_queries(6):
        response = client.get(URL + "?page_size=30")
    assert len(response.json()["results"]) == 30


def test_retire_deactivates_the_mac(api, operator_a, fleet):
    response = api.as_user(operator_a).post(URL + "%d/retire/" % fleet["ok"].pk)
    assert response.status_code == 200, response.content
    fleet["ok"].refresh_from_db()
    assert fleet["ok"].retired_at is not None and fleet["ok"].managed is False
    assert response.json()["managed"] is False


def test_viewer_cannot_retire(api, viewer_a, fleet):
    assert api.as_user(viewer_a).post(URL + "%d/retire/" % fleet["ok"].pk).status_code == 403
    fleet["ok"].refresh_from_db()
    assert fleet["ok"].managed is True


def test_writes_are_not_allowed_on_computers(api, admin_a, fleet):
    client = api.as_user(admin_a)
    assert client.post(URL, {"name": "x"}, format="json").status_code == 405
    assert client.delete(URL + "%d/" % fleet["ok"].pk).status_code == 405
    assert client.generic("PROPFIND", URL).status_code == 405


def test_history_lists_the_macs_reports_newest_first(api, viewer_a, fleet, tenant_a):
    from compliance.models import ComplianceReport

    first = ComplianceReport.objects.create(tenant=tenant_a, computer=fleet["ok"], username="ada",
                                            compliance_status="notCompliant", status="completed")
    second = ComplianceReport.objects.create(tenant=tenant_a, computer=fleet["ok"], username="ada",
                                             compliance_status="compliant", status="accepted")
    ComplianceReport.objects.create(tenant=tenant_a, computer=fleet["old"], username="bob")
    response = api.as_user(viewer_a).get(URL + "%d/history/" % fleet["ok"].pk)
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == [second.pk, first.pk]
    assert response.json()["results"][0]["status"] == "accepted"
    assert api.as_user(viewer_a).get(URL + "%d/history/" % fleet["b"].pk).status_code == 404


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0007-04-26T17:03:19-19:45", 200),  # an offset PostgreSQL refuses: compared in UTC instead
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
        ("9999-12-31T23:00:00-05:00", 400),  # after year 9999 in UTC
    ],
)
def test_date_time_filters_are_compared_in_utc_and_checked_for_range(value, status, client, msp_user):
    client.force_login(msp_user)
    for url, name in (
        ("/api/v1/compliance-reports/", "created_at"),
        ("/api/v1/computers/", "last_check_in"),
        ("/api/v1/inventory-events/", "received_at"),
        ("/api/v1/client-secrets/", "expires_at__lte"),  # schemathesis found this one 500 on PostgreSQL
    ):
        response = client.get(url, {name if name.endswith("__lte") else name + "_before": value})
        assert response.status_code == status, (url, response.content)
