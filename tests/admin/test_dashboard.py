"""The admin index's tenant dashboard: ordering by attention, scoping, bounded queries, the SVG trend chart."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import ComplianceReport
from portal import dashboard
from portal.models import Tenant
from tests.admin.conftest import healthy_tenant, macs, report, snapshots
from tests.conftest import member
from tests.factories import ClientSecretFactory, TenantFactory

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status
ROW_RE = re.compile(r'<tr class="tenant-row [^"]*" data-tenant="([^"]+)"')


def order_on_page(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    return ROW_RE.findall(response.content.decode())


@pytest.fixture
def fleet(db):
    """Seven tenants, each with one kind of trouble (or none)."""
    now = timezone.now()
    calm = healthy_tenant("Calm", "calm")
    # A failed connection test.
    failing = healthy_tenant("Failing connection", "failing")
    Tenant.objects.filter(pk=failing.pk).update(last_test_ok=False, last_test_message="✗ Token: invalid secret")
    # Failed reports.
    failed = healthy_tenant("Failed reports", "failed", n_macs=0)
    report(macs(failed, compliant=2)[0], Status.FAILED)
    # The last valid secret expires in 10 days (a warning, not yet critical); an expired one does not count.
    expiring = TenantFactory(name="Expiring secret", slug="expiring", last_test_ok=True, last_test_at=now)
    ClientSecretFactory(tenant=expiring, expires_at=now + datetime.timedelta(days=10, hours=1))
    ClientSecretFactory(tenant=expiring, expires_at=now - datetime.timedelta(days=3))
    macs(expiring, compliant=3)
    # Reports pending for two hours.
    stuck = healthy_tenant("Stuck outbox", "stuck", n_macs=0)
    for mac in macs(stuck, compliant=2):
        report(mac, Status.PENDING, age=datetime.timedelta(hours=2))
    # 60 % of the evaluated Macs are not compliant.
    noncompliant = healthy_tenant("Not compliant", "noncompliant", n_macs=0)
    macs(noncompliant, compliant=2, not_compliant=3, not_evaluated=4)
    # Inactive tenants come last, whatever their state.
    TenantFactory(name="Aardvark (inactive)", slug="inactive", is_active=False, last_test_ok=False)
    return locals()


def test_tenants_needing_attention_come_first(client, msp_user, fleet):
    client.force_login(msp_user)
    order = order_on_page(client)
    # Critical first (ties: the larger not-compliant share, then the name), then warnings, then the healthy,
    # then the inactive.
    assert order == ["noncompliant", "failed", "failing", "expiring", "stuck", "calm", "inactive"]


def test_each_reason_is_named(msp_user, fleet):
    rows = {row.tenant.slug: row for row in dashboard.tenant_rows(msp_user)}
    texts = {slug: [(i.level, i.text) for i in row.issues] for slug, row in rows.items()}
    assert texts["calm"] == [] and rows["calm"].level == "ok"
    assert texts["failing"] == [("critical", "The last connection test failed.")]
    assert texts["failed"] == [("critical", "1 report to Intune failed.")]
    assert texts["expiring"] == [("warning", "The last client secret expires in 10 days.")]
    assert rows["expiring"].secret_days == 10
    assert texts["stuck"] == [("warning", "2 reports pending, the oldest for 2 hours.")]
    assert texts["noncompliant"] == [("critical", "60% of the evaluated Macs are not compliant (3 of 5).")]
    assert texts["inactive"] == []


def test_secret_and_pending_escalate(msp_user, settings):
    tenant = TenantFactory(name="T", slug="t", last_test_ok=True)
    ClientSecretFactory(tenant=tenant, expires_at=timezone.now() + datetime.timedelta(days=3, hours=1))
    mac = macs(tenant, compliant=1)[0]
    report(mac, Status.PENDING, age=datetime.timedelta(hours=7, minutes=5))
    now = timezone.now()
    row, = dashboard.tenant_rows(msp_user, now=now)
    assert [(i.level, i.text) for i in row.issues] == [
        ("critical", "The last client secret expires in 3 days."),
        ("critical", "1 report pending, the oldest for 7 hours."),
    ]
    settings.DASHBOARD_THRESHOLDS = {"secret_critical_days": 1, "pending_critical_minutes": 24 * 60}
    row, = dashboard.tenant_rows(msp_user, now=now)
    assert [i.level for i in row.issues] == ["warning", "warning"]
    tenant.client_secrets.all().delete()
    row, = dashboard.tenant_rows(msp_user, now=now)
    assert row.issues[0].text == "No valid client secret: the portal cannot reach Intune."


def test_unconfigured_and_untested_tenants(msp_user):
    TenantFactory(name="New", slug="new", entra_tenant="", client_id="")
    TenantFactory(name="Untested", slug="untested")
    rows = {row.tenant.slug: row for row in dashboard.tenant_rows(msp_user)}
    assert [i.level for i in rows["new"].issues] == ["notice"]  # nothing to say about its secret yet
    assert [(i.level, i.text) for i in rows["untested"].issues][:1] == [
        ("warning", "The connection was never tested.")]


def test_the_page_shows_the_numbers_and_links(client, msp_user, fleet):
    client.force_login(msp_user)
    page = client.get("/admin/").content.decode()
    noncompliant = fleet["noncompliant"]
    assert "9 Macs" in page and "2 compliant" in page and "3 not compliant" in page and "4 not evaluated" in page
    assert ("/admin/devices/computer/?tenant__id__exact=%d&amp;compliance_status__exact=notCompliant"
            % noncompliant.pk) in page
    assert "/admin/compliance/compliancereport/?tenant__id__exact=%d&amp;status__exact=failed" % fleet[
        "failed"].pk in page
    assert "✗ Failed" in page and "✓ Passed" in page
    # The filtered lists the numbers link to exist and apply the filter (a bad lookup would redirect with ?e=1).
    for link in fleet_links(noncompliant):
        response = client.get(link)
        assert response.status_code == 200, link
        assert response.context["cl"].result_count == {"compliant": 2, "notCompliant": 3, "True": 4}[
            link.rsplit("=", 1)[1]]
    assert "none valid" in page  # the inactive tenant has no secret
    # Django's list of apps stays below the dashboard.
    assert page.index('id="tenant-health"') < page.index('class="app-compliance')
    assert "/admin/compliance/compliancereport/" in page and "/admin/devices/computer/" in page


def test_customer_admin_sees_only_their_tenants(client, tenant_a, tenant_b, admin_a):
    macs(tenant_a, compliant=1)
    macs(tenant_b, not_compliant=5)
    mac_b = macs(tenant_b, compliant=1)[0]
    report(mac_b, Status.FAILED)
    snapshots(tenant_b, [(6, 0, 6)])
    client.force_login(admin_a)
    response = client.get("/admin/")
    page = response.content.decode()
    assert ROW_RE.findall(page) == ["alpha"]
    assert "Bravo" not in page
    totals = response.context["dashboard"]["totals"]
    assert totals["macs"] == 1 and totals["failed"] == 0 and totals["tenants"] == 1
    assert response.context["dashboard"]["chart"].rows == []  # bravo's snapshot is not theirs


def test_member_of_several_tenants_sees_their_roles(client, tenant_a, tenant_b):
    user = member(tenant_a, "viewer", username="multi")
    from tests.factories import MembershipFactory

    MembershipFactory(user=user, tenant=tenant_b, role="operator")
    client.force_login(user)
    response = client.get("/admin/")
    rows = {row.tenant.slug: row for row in response.context["dashboard"]["rows"]}
    assert set(rows) == {"alpha", "bravo"}
    assert not rows["alpha"].may_operate and rows["bravo"].may_operate
    page = response.content.decode()
    assert "/admin/portal/tenant/%d/test-connection/" % tenant_b.pk in page
    assert "/admin/portal/tenant/%d/test-connection/" % tenant_a.pk not in page


def test_a_user_without_tenants_gets_an_empty_dashboard(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="nobody"))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "You have no tenant yet." in response.content.decode()


def test_anonymous_is_sent_to_the_login(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")  # then /accounts/login/


def fleet_links(tenant):
    base = "/admin/devices/computer/?tenant__id__exact=%d&" % tenant.pk
    return [base + q for q in ("compliance_status__exact=compliant", "compliance_status__exact=notCompliant",
                               "compliance_status__isnull=True")]


def _grow(n, start):
    """``n`` more tenants, each with Macs of every state, reports of every status and 30 days of snapshots."""
    for i in range(start, start + n):
        tenant = healthy_tenant("Tenant %03d" % i, "tenant-%03d" % i, n_macs=0)
        mine = macs(tenant, compliant=3, not_compliant=2, not_evaluated=1)
        report(mine[0], Status.PENDING, age=datetime.timedelta(hours=1))
        report(mine[1], Status.FAILED)
        report(mine[2], Status.COMPLETED, sent=timezone.now())
        snapshots(tenant, [(6, 3, 2)] * 30)


@pytest.mark.parametrize("who", ["msp", "customer"])
def test_queries_do_not_grow_with_tenants_and_macs(client, django_assert_max_num_queries, who, tenant_a):
    from tests.factories import MembershipFactory, UserFactory

    if who == "msp":
        user = UserFactory(username="msp", is_superuser=True)
    else:
        user = UserFactory(username="customer")
    client.force_login(user)

    def grow_and_count(n, start):
        _grow(n, start)
        if who == "customer":
            for tenant in Tenant.objects.exclude(memberships__user=user):
                MembershipFactory(user=user, tenant=tenant, role="admin")
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/admin/")
        assert response.status_code == 200
        return len(queries), len(ROW_RE.findall(response.content.decode()))

    small, rows_small = grow_and_count(2, 0)
    large, rows_large = grow_and_count(10, 2)
    assert (rows_small, rows_large) == (3, 13)
    assert large == small, "the dashboard's queries grew with the number of tenants"
    # Four or five for the dashboard, plus the session, the user, the recent actions and (for a customer)
    # the app list's permission checks, one per role.
    with django_assert_max_num_queries(15):
        client.get("/admin/")


def test_the_fleet_chart_is_inline_svg_with_a_text_alternative(client, msp_user, tenant_a, tenant_b):
    days = [None] * 20 + [(10, 5, 5)] * 3 + [None] + [(10, 8, 2)] * 6  # 30 days, two gaps
    snapshots(tenant_a, days)
    snapshots(tenant_b, [(10, 10, 0)] * 30)
    client.force_login(msp_user)
    page = client.get("/admin/").content.decode()
    chart = page[page.index('<figure class="trend" id="fleet-trend">'):]
    chart = chart[:chart.index("</figure>")]
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in chart and 'role="img"' in chart
    assert 'aria-labelledby="fleet-trend-title" aria-describedby="fleet-trend-desc"' in chart
    assert '<title id="fleet-trend-title">Compliant Macs, all your tenants, last 30 days</title>' in chart
    desc = re.search(r'<desc id="fleet-trend-desc">([^<]+)</desc>', chart).group(1)
    assert "100% on" in desc and "90% on" in desc and "Lowest: 75%" in desc
    # Every day has a snapshot of tenant_b, so the fleet's line is unbroken: one polyline per series.
    assert chart.count("<polyline") == 2 and chart.count("<circle") == 60
    # The numbers as a table.
    assert chart.count('<th scope="row">') == 30
    assert "<td>20</td><td>15</td><td>5</td><td>0</td><td>75%</td>" in chart
    # Each tenant's sparkline, named for screen readers.
    assert '<title id="trend-%d-title">Alpha: compliant Macs over 30 days</title>' % tenant_a.pk in page


def test_chart_geometry_breaks_lines_at_missing_days():
    today = datetime.date(2025, 5, 30)
    points = [
        {"date": today - datetime.timedelta(days=d), "total": 4, "compliant": c, "not_compliant": 4 - c,
         "not_evaluated": 0}
        for d, c in [(29, 4), (28, 2), (10, 0), (9, 4), (0, 4)]
    ]
    chart = dashboard.trend_chart(points, "t", "c", today=today)
    compliant, not_compliant = chart.lines
    # Two runs of consecutive days become polylines; the lone last day is a dot only.
    assert len(compliant["segments"]) == 2 and len(compliant["dots"]) == 5
    top, bottom = chart.plot["top"], chart.plot["bottom"]
    first = compliant["segments"][0].split()
    assert first[0] == "%s,%s" % (chart.plot["left"] * 1.0, top * 1.0)  # 100 % on the first day, at the left
    assert first[1].endswith(",%s" % ((top + bottom) / 2))  # 50 %
    assert not_compliant["dots"][2][1] == top  # 100 % not compliant on day 19
    assert [row["percent"] for row in chart.rows] == [100, 50, 0, 100, 100]
    empty = dashboard.trend_chart([], "t", "e", today=today)
    assert empty.empty and empty.desc == "No daily snapshot yet in the last 30 days."


def test_partner_mode_rows_use_the_partner_credential_and_show_intune_state(client, msp_user):
    from tests.compliance.partner_helpers import add_secret, partner_app

    app = partner_app(certificates=())
    add_secret(app, days=40)
    waiting = TenantFactory(name="Waiting", slug="waiting", use_own_app=False, client_id="")
    unresponsive = TenantFactory(name="Quiet", slug="quiet", use_own_app=False, client_id="", last_test_ok=True,
                                 consent_granted_at=timezone.now(),
                                 intune_partner={"found": True, "state": "unresponsive", "groups": ["g"]})
    rows = {row.tenant.slug: row for row in dashboard.tenant_rows(msp_user)}
    assert rows["waiting"].connection_configured and not rows["waiting"].own_app
    assert rows["waiting"].secret_days == 39  # the partner app's last credential, not a secret of the tenant
    assert ("notice", "Admin consent not granted yet (Grant admin consent).") in [
        (i.level, i.text) for i in rows["waiting"].issues]
    assert not any("client secret" in i.text for i in rows["waiting"].issues)
    assert [(i.level, i.text) for i in rows["quiet"].issues] == [
        ("warning", "Intune reports the compliance partner as unresponsive.")]
    client.force_login(msp_user)
    page = client.get("/admin/").content.decode()
    assert "Intune partner:" in page and "partner app" in page
    assert waiting.pk and unresponsive.pk
