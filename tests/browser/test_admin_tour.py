"""Every main admin page in headless Chromium, as MSP staff and as a customer admin, on a laptop (1366 × 768)
and a desktop (1920 × 1080) screen, over the demo's data: no page may be wider than the window, no list or
inline table may need its own horizontal scroll, the console shows no error and no request answers 4xx/5xx.
Screenshots of each page go to test-results/admin-tour-<user>-<width>-<page>.png (the first screen) and
...-full.png (the whole page).
"""

import datetime
import io
import uuid

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from compliance.models import ComplianceReport
from compliance.sync import evaluate_and_queue
from devices.models import Computer, InventoryEvent
from portal.models import SyncRun, Tenant
from tests.browser.pages import RESULTS_DIR

pytestmark = pytest.mark.browser

SIZES = [(1366, 768), (1920, 1080)]

# What makes a page "too wide": the document itself, or a list / inline table that scrolls inside its box.
MEASURE_JS = """
() => {
  const doc = document.documentElement;
  const boxes = [...document.querySelectorAll('#changelist .results, .inline-group .tabular, .module')]
    .filter((el) => el.getClientRects().length && el.scrollWidth > el.clientWidth + 1)
    .map((el) => (el.id || el.className) + ' ' + el.scrollWidth + ' > ' + el.clientWidth);
  const header = document.querySelector('#header');
  return {
    docWidth: doc.scrollWidth, viewport: window.innerWidth, scrollingBoxes: boxes,
    headerWidth: header ? header.getBoundingClientRect().width : 0,
    title: document.title, h1: (document.querySelector('h1') || {}).innerText || '',
  };
}
"""


def seed():
    """The demo's tenants, users and Macs, plus what the demo's worker would have made: runs, reports, a token,
    webhook events."""
    call_command("demo_data", stdout=io.StringIO())
    now = timezone.now()
    for tenant in Tenant.objects.all():
        Tenant.objects.filter(pk=tenant.pk).update(entra_tenant_id=uuid.uuid4(), last_test_at=now,
                                                   last_test_ok=tenant.slug != "fabrikam",
                                                   last_test_message="✓ Graph token")
        evaluate_and_queue(tenant.pk)
    outcomes = ["completed", "completed", "accepted", "failed", "pending", "superseded"]
    for index, report in enumerate(ComplianceReport.objects.order_by("id")[:120]):
        report.status = outcomes[index % len(outcomes)]
        report.attempts = 0 if report.status == "pending" else 1
        if report.status == "failed":
            report.error_code = "InvalidDeviceId"
            report.error_detail = ("Intune does not know this Entra device ID: the user must register the Mac again "
                                   "with Company Portal launched from Self Service.")
        report.save()
    contoso = Tenant.objects.get(slug="contoso")
    SyncRun.objects.create(
        tenant=contoso, kind=SyncRun.Kind.DELIVER, status=SyncRun.Status.PARTIAL, started_at=now,
        finished_at=now + datetime.timedelta(seconds=3.4), error="1 report failed: InvalidDeviceId for "
        "29b64294-9fd5-4173-9a5e-da9f564d382c (the user must register the Mac again)",
        counters={"reports_created": 12, "reports_unchanged": 60, "batches": 1, "sent": 12, "accepted": 11,
                  "failed": 1, "more": False},
    )
    SyncRun.objects.create(
        tenant=contoso, kind=SyncRun.Kind.JAMF_PULL, status=SyncRun.Status.SUCCEEDED,
        started_at=now - datetime.timedelta(minutes=20), finished_at=now - datetime.timedelta(minutes=18, seconds=55),
        counters={"jamf_pull": {"pages": 2, "records": 80, "updated": 5}, "evaluate": {"evaluated": 80}},
    )
    mac = Computer.objects.filter(tenant=contoso).order_by("id").first()
    for status, error in (("processed", ""), ("failed", "Computer 999 is not in Jamf Pro any more (404).")):
        InventoryEvent.objects.create(tenant=contoso, source="webhook", event_type="ComputerCheckIn", status=status,
                                      error=error, computer=mac, raw_body='{"event": {"jssID": 1}}')
    User = get_user_model()
    for username in ("msp", "contoso-admin"):
        AuthToken.objects.create(user=User.objects.get(username=username), expiry=datetime.timedelta(days=30))


def pages_for(username):
    """(name, path) of every main admin page, for this user."""
    contoso = Tenant.objects.get(slug="contoso")
    mac = (Computer.objects.filter(tenant=contoso).exclude(failed_rules=[]).filter(user_accounts__isnull=False)
           .order_by("id").first())
    pages = [
        ("dashboard", "/admin/"),
        ("tenants", "/admin/portal/tenant/"),
        ("tenant", "/admin/portal/tenant/%d/change/" % contoso.pk),
        ("computers", "/admin/devices/computer/"),
        ("computers-filtered", "/admin/devices/computer/?compliance_status__exact=notCompliant"),
        ("computer", "/admin/devices/computer/%d/change/" % mac.pk),
        ("reports", "/admin/compliance/compliancereport/"),
        ("report", "/admin/compliance/compliancereport/%d/change/" % ComplianceReport.objects.filter(
            tenant=contoso).order_by("id").first().pk),
        ("sync-runs", "/admin/portal/syncrun/"),
        ("policies", "/admin/compliance/compliancepolicy/"),
        ("best-practice", "/admin/compliance/compliancepolicy/best-practice/"),
        ("tokens", "/admin/portal/apitoken/"),
        ("inventory-events", "/admin/devices/inventoryevent/"),
        ("home", "/"),
    ]
    # The audit trail's list, once it has landed (issue 13: portal.AuditEvent, django-auditlog).
    for model in admin.site._registry:
        if "audit" in model._meta.model_name or model._meta.app_label == "auditlog":
            pages.append(("audit-%s" % model._meta.model_name,
                          "/admin/%s/%s/" % (model._meta.app_label, model._meta.model_name)))
    return pages


def session_cookie(username):
    """Signed in through Django's session (as the login page would), so the tour does not depend on the login
    page's form."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def tour(browser, base_url, username, cookie, pages):
    """Visit every page at every size; return a report per (width, page)."""
    results = []
    for width, height in SIZES:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base_url}])
        page = context.new_page()
        problems = []
        page.on("console", lambda message, problems=problems: message.type == "error"
                and problems.append("console: %s" % message.text))
        page.on("response", lambda response, problems=problems: response.status >= 400
                and problems.append("%d %s" % (response.status, response.url)))
        try:
            for name, path in pages:
                problems.clear()
                response = page.goto(base_url + path, wait_until="load")
                measure = page.evaluate(MEASURE_JS)
                stem = "admin-tour-%s-%d-%s" % (username, width, name)
                page.screenshot(path=str(RESULTS_DIR / ("%s.png" % stem)))
                page.screenshot(path=str(RESULTS_DIR / ("%s-full.png" % stem)), full_page=True)
                results.append({"width": width, "name": name, "path": path, "status": response.status,
                                "url": page.url, "problems": list(problems), **measure})
        finally:
            context.close()
    return results


@pytest.fixture
def demo(transactional_db):
    seed()


@pytest.mark.parametrize("username", ["msp", "contoso-admin"])
def test_every_main_page_fits_and_is_clean(browser, live_server, demo, username):
    pages = pages_for(username)
    # About 30 pages with two screenshots each: minutes on a busy machine (no timing is asserted).
    results = browser.run(tour, live_server.url, username, session_cookie(username), pages, timeout=900)
    assert len(results) == len(pages) * len(SIZES)
    failures = []
    for r in results:
        where = "%s at %d px (%s)" % (r["name"], r["width"], r["path"])
        if r["status"] >= 400 or "/login/" in r["url"]:
            failures.append("%s answered %d at %s" % (where, r["status"], r["url"]))
        if r["docWidth"] > r["viewport"]:
            failures.append("%s is %d px wide in a %d px window" % (where, r["docWidth"], r["viewport"]))
        if r["scrollingBoxes"]:
            failures.append("%s scrolls sideways inside: %s" % (where, r["scrollingBoxes"]))
        if r["problems"]:
            failures.append("%s: %s" % (where, r["problems"]))
    assert not failures, "\n".join(failures)
    # The customer admin sees their tenant only, and no MSP-only page.
    if username == "contoso-admin":
        tenants = next(r for r in results if r["name"] == "tenants")
        assert tenants["status"] == 200
    assert (RESULTS_DIR / ("admin-tour-%s-1366-computers.png" % username)).stat().st_size > 10_000
