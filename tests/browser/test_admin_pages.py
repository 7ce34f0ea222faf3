"""The admin in headless Chromium: the dashboard with its trend chart, and Test connection from the tenant page
against the simulator. Screenshots in test-results/."""

import datetime

import pytest
from django.utils import timezone

from portal.models import Tenant
from tests.admin.conftest import healthy_tenant, macs, snapshots
from tests.browser.pages import RESULTS_DIR
from tests.compliance.intune_helpers import connect
from tests.conftest import member
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.browser

PASSWORD = "pw-for-tests-1"  # tests/factories.py UserFactory

DASHBOARD_JS = """
() => {
  const fleet = document.querySelector('#fleet-trend svg');
  const box = fleet.getBoundingClientRect();
  const rows = [...document.querySelectorAll('tr.tenant-row')];
  const table = document.querySelector('.dashboard-module');
  return {
    rows: rows.map((r) => r.dataset.tenant),
    issues: rows.map((r) => r.querySelector('td.attention').innerText.trim()),
    svgWidth: box.width,
    svgHeight: box.height,
    polylines: fleet.querySelectorAll('polyline').length,
    contoso_polylines: document.querySelectorAll('tr[data-tenant="contoso"] td.trend-cell polyline').length,
    dashed: getComputedStyle(fleet.querySelector('.trend-not_compliant polyline')).strokeDasharray,
    sparklines: document.querySelectorAll('td.trend-cell svg').length,
    gridDisplay: getComputedStyle(document.querySelector('.dashboard-totals')).display,
    apps: document.querySelectorAll('#content-main .app-devices, #content-main .app-compliance').length,
    tableFits: table.scrollWidth <= table.clientWidth,
  };
}
"""


def log_in(page, base_url, username, next_path):
    page.goto("%s/admin/login/?next=%s" % (base_url, next_path))  # leads to the sign-in page (signin/)
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_load_state("load")


def new_page(browser, errors):
    """A page that records console errors and failed requests (the favicon aside: the portal has none)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and errors.append(message.text))
    page.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
            and errors.append("%s %s" % (response.status, response.url)))
    return context, page


def open_dashboard(browser, base_url, username, name):
    errors = []
    context, page = new_page(browser, errors)
    try:
        log_in(page, base_url, username, "/admin/")
        chart = page.get_by_role("img", name="Compliant Macs, all your tenants, last 30 days")
        chart.wait_for()
        description = chart.get_attribute("aria-describedby")
        page.screenshot(path=str(RESULTS_DIR / ("%s.png" % name)), full_page=True)
        page.get_by_text("The chart's numbers").click()  # the text alternative opens
        table_rows = page.locator("#fleet-trend details table tbody tr").count()
        return {**page.evaluate(DASHBOARD_JS), "errors": errors, "describedby": description,
                "table_rows": table_rows, "desc": page.locator("#" + description).text_content()}
    finally:
        context.close()


@pytest.fixture
def fleet(transactional_db):
    today = timezone.now().date()
    contoso = healthy_tenant("Contoso Ltd", "contoso", n_macs=0)
    macs(contoso, compliant=40, not_compliant=6, not_evaluated=2)
    # A month of improving compliance, with a day the snapshot task did not run.
    snapshots(contoso, [(48, 18 + d, 30 - d) if d != 12 else None for d in range(30)], today=today)
    fabrikam = healthy_tenant("Fabrikam Inc", "fabrikam", n_macs=0)
    macs(fabrikam, compliant=30, not_compliant=1)
    snapshots(fabrikam, [(31, 30, 1)] * 30, today=today)
    Tenant.objects.filter(pk=fabrikam.pk).update(last_test_ok=False, last_test_message="✗ Graph token: expired")
    northwind = TenantFactory(name="Northwind Traders", slug="northwind")  # never tested, no secret
    macs(northwind, compliant=5)
    snapshots(northwind, [(5, 5, 0)] * 10, today=today)
    return {"contoso": contoso, "fabrikam": fabrikam, "northwind": northwind}


def test_dashboard_renders_with_the_chart(browser, live_server, fleet):
    UserFactory(username="msp-browser", is_superuser=True)
    report = browser.run(open_dashboard, live_server.url, "msp-browser", "admin-dashboard")
    assert report["errors"] == []
    assert report["gridDisplay"] == "grid", "the dashboard stylesheet did not load"
    # Fabrikam (failed connection test) and Northwind (no valid secret) need attention; Contoso comes last.
    assert report["rows"] == ["northwind", "fabrikam", "contoso"]
    assert "No valid client secret" in report["issues"][0] and "connection test failed" in report["issues"][1]
    assert report["issues"][2] == "All good"
    assert report["svgWidth"] > 300 and report["svgHeight"] > 100
    # The fleet counts Contoso's missing day with its day before: one unbroken line per series; Contoso's own
    # sparkline breaks there.
    assert report["polylines"] == 2 and report["contoso_polylines"] == 4
    assert report["dashed"] not in ("none", "")  # not-compliant is dashed: colour is not the only cue
    assert report["sparklines"] == 3
    assert report["table_rows"] == 30
    assert report["desc"].startswith("Share of Macs reported compliant per day")
    assert report["apps"] >= 2  # Django's app list stays on the page
    assert report["tableFits"], "the tenant table needs a horizontal scroll at 1400 px"
    assert (RESULTS_DIR / "admin-dashboard.png").stat().st_size > 10_000


def test_customer_admin_dashboard_shows_their_tenant_only(browser, live_server, fleet):
    member(fleet["contoso"], "admin", username="contoso-admin")
    report = browser.run(open_dashboard, live_server.url, "contoso-admin", "admin-dashboard-customer")
    assert report["rows"] == ["contoso"] and report["errors"] == []
    assert report["sparklines"] == 1


def run_test_connection(browser, base_url, username, tenant_pk):
    errors = []
    context, page = new_page(browser, errors)
    try:
        log_in(page, base_url, username, "/admin/portal/tenant/%d/change/" % tenant_pk)
        page.screenshot(path=str(RESULTS_DIR / "admin-tenant-page.png"))
        tools = page.locator("ul.object-tools")
        tool_names = [text.strip() for text in tools.locator("li a, li button").all_text_contents()]
        tools.get_by_role("button", name="Test connection").click()  # one click: the test runs at once
        page.wait_for_load_state("load")
        page.locator("tr.step-provisioning").wait_for()
        crumbs = page.locator(".breadcrumbs").inner_text()
        steps = [
            [cell.strip() for cell in row.locator("td").all_inner_texts()]
            for row in page.locator("#content-main tbody tr").all()
        ]
        heading = page.locator("#content-main h2").first.inner_text()
        page.screenshot(path=str(RESULTS_DIR / "admin-test-connection.png"), full_page=True)
        return {"tools": tool_names, "crumbs": crumbs, "steps": steps, "heading": heading, "errors": errors}
    finally:
        context.close()


def test_test_connection_from_the_tenant_page(browser, live_server, simulator, transactional_db):
    tenant = TenantFactory(name="Contoso Ltd", slug="contoso")
    connect(simulator, tenant)
    member(tenant, "operator", username="contoso-operator")
    report = browser.run(run_test_connection, live_server.url, "contoso-operator", tenant.pk)
    assert report["errors"] == []
    assert report["tools"][:2] == ["Test connection", "Sync now"] and "Provision" not in report["tools"]
    assert "Contoso Ltd" in report["crumbs"] and report["crumbs"].endswith("Connection test")
    assert "Connected" in report["heading"]
    names = [step[1] for step in report["steps"]]
    assert len(names) == 7 and all(step[0] == "✓" for step in report["steps"]), report["steps"]
    assert "Graph token" in names and "Intune token" in names
    tenant.refresh_from_db()
    assert tenant.last_test_ok is True and tenant.last_test_at > timezone.now() - datetime.timedelta(minutes=5)
