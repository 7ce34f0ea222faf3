"""The compliance report: per-tenant counts, failures per rule, the daily series, and the streamed CSV."""

import csv
import datetime
import io

from django.utils import timezone

from compliance.models import ComplianceDailySnapshot
from compliance.reports import take_snapshots
from compliance.tasks import snapshot_task
from tests.factories import ComputerFactory

URL = "/api/v1/reports/compliance/"


def make_fleet(tenant_a, tenant_b):
    ComputerFactory(tenant=tenant_a, inventory_state=0, compliance_status="compliant",
                    registration_state="registered", company_portal_version="5.0")
    ComputerFactory(tenant=tenant_a, inventory_state=2, compliance_status="notCompliant",
                    registration_state="not_started", failed_rules=["validity_expired", "filevault_off"])
    ComputerFactory(tenant=tenant_a, inventory_state=0, compliance_status="notCompliant",
                    registration_state="account_not_onboarded", failed_rules=["filevault_off"],
                    name="=HYPERLINK(\"http://evil\")")
    ComputerFactory(tenant=tenant_a)  # not evaluated yet
    ComputerFactory(tenant=tenant_b, compliance_status="notCompliant", failed_rules=["sip_off"])


def test_summary_counts_per_tenant(api, admin_a, tenant_a, tenant_b, django_assert_max_num_queries):
    make_fleet(tenant_a, tenant_b)
    client = api.as_user(admin_a)
    with django_assert_max_num_queries(6):  # token, user's tokens, tenants, counts (one pass), series, +1
        response = client.get(URL)
    assert response.status_code == 200, response.content
    (alpha,) = response.json()["tenants"]
    assert alpha["tenant"] == "alpha" and alpha["total"] == 4
    assert alpha["inventory_state"] == {"activated": 2, "deactivated": 0, "unresponsive": 1, "not_evaluated": 1}
    assert alpha["compliance"] == {"compliant": 1, "notCompliant": 2, "not_evaluated": 1}
    assert alpha["registration"] == {"registered": 1, "not_started": 1, "account_not_onboarded": 1,
                                     "not_evaluated": 1}
    assert alpha["company_portal"] == {"installed": 1, "missing": 3}
    assert [(r["code"], r["count"]) for r in alpha["failures_by_rule"]] == [
        ("filevault_off", 2), ("validity_expired", 1)]
    assert alpha["failures_by_rule"][0]["sentence"] and alpha["failures_by_rule"][0]["remedy"]


def test_summary_of_msp_staff_and_the_tenant_filter(api, msp_user, tenant_a, tenant_b):
    make_fleet(tenant_a, tenant_b)
    client = api.as_user(msp_user)
    assert [t["tenant"] for t in client.get(URL).json()["tenants"]] == ["alpha", "bravo"]
    assert [t["tenant"] for t in client.get(URL + "?tenant=bravo").json()["tenants"]] == ["bravo"]
    assert client.get(URL + "?tenant=nowhere").status_code == 400


def test_daily_series_from_the_snapshot_task(api, admin_a, tenant_a, tenant_b):
    make_fleet(tenant_a, tenant_b)
    now = timezone.now()
    take_snapshots(now=now - datetime.timedelta(days=100))  # outside the 90 days
    take_snapshots(now=now - datetime.timedelta(days=2))
    assert snapshot_task() == {"tenants": 2}
    assert snapshot_task() == {"tenants": 2}  # the same day again: overwritten, not added
    assert ComplianceDailySnapshot.objects.filter(tenant=tenant_a).count() == 3
    (alpha,) = api.as_user(admin_a).get(URL).json()["tenants"]
    assert [p["date"] for p in alpha["daily"]] == [
        (now - datetime.timedelta(days=2)).date().isoformat(), now.date().isoformat()]
    assert alpha["daily"][-1]["total"] == 4 and alpha["daily"][-1]["not_compliant"] == 2


def read_csv(response):
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_streams_the_macs_with_reasons_and_takes_the_filters(api, admin_a, tenant_a, tenant_b):
    make_fleet(tenant_a, tenant_b)
    client = api.as_user(admin_a)
    rows = read_csv(client.get("/api/v1/reports/compliance.csv"))
    assert len(rows) == 4 and {r["tenant"] for r in rows} == {"alpha"}
    rows = read_csv(client.get("/api/v1/reports/compliance.csv?compliance=notCompliant"))
    assert len(rows) == 2
    failing = next(r for r in rows if "validity_expired" in r["failed_rules"])
    assert failing["failed_rules"] == "validity_expired;filevault_off" or set(failing["failed_rules"].split(";")) \
        == {"validity_expired", "filevault_off"}
    assert failing["reasons"] and failing["inventory_state"] == "unresponsive"
    assert any(r["name"].startswith("'=") for r in rows)  # no formula reaches a spreadsheet
    # Accept: text/csv works the same; a bad filter is a 400, in CSV.
    assert len(read_csv(client.get(URL, HTTP_ACCEPT="text/csv"))) == 4
    response = client.get("/api/v1/reports/compliance.csv?state=nope")
    assert response.status_code == 400 and b"state" in response.content


def test_csv_query_count_is_constant(api, admin_a, tenant_a, django_assert_max_num_queries):
    ComputerFactory.create_batch(50, tenant=tenant_a, failed_rules=["sip_off"])
    client = api.as_user(admin_a)
    with django_assert_max_num_queries(5):
        rows = read_csv(client.get("/api/v1/reports/compliance.csv"))
    assert len(rows) == 50
