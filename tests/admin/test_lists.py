"""The admin's lists and pages as people read them (issue 15): the useful columns first, states in words and
colours, durations and counters for people, filter counts that honour the other filters, a clear word for a
tenant filter the user may not use. The widths themselves are checked in Chromium (tests/browser)."""

import datetime
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from compliance.models import ComplianceReport
from devices.models import ComplianceStatus, InventoryState, Registration
from portal.admin_format import counter_items, duration_text
from portal.models import SyncRun
from tests.factories import ComputerFactory, TenantFactory, UserAccountFactory

pytestmark = pytest.mark.django_db

COMPUTERS = "/admin/devices/computer/"


def column_headers(page):
    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page, re.S)]


def filter_choices(page, title):
    block = re.search(r"<summary>\s*By %s\s*</summary>(.*?)</ul>" % re.escape(title), page, re.S | re.I)
    assert block, "no %r filter" % title
    return [re.sub(r"\s+", " ", text).strip() for text in re.findall(r'<a href="[^"]*">(.*?)</a>', block.group(1))]


# -- the computer list -----------------------------------------------------------------------------------------


def test_computer_list_puts_the_useful_columns_first(client, msp_user, tenant_a):
    ComputerFactory(tenant=tenant_a, compliance_status=ComplianceStatus.NOT_COMPLIANT, failed_rules=["filevault_off"],
                    inventory_state=InventoryState.UNRESPONSIVE, registration_state=Registration.REGISTERED)
    client.force_login(msp_user)
    page = client.get(COMPUTERS).content.decode()
    headers = [h for h in column_headers(page) if h]
    assert headers[:4] == ["Mac", "Tenant", "Compliance", "Failed rules"]
    assert "Model" not in headers  # on the Mac's page
    assert 'badge-bad">Not compliant<' in page and 'badge-warn" title=' in page and ">Unresponsive<" in page
    assert "FileVault" in page


def test_a_customer_with_one_tenant_gets_no_tenant_column(client, tenant_a, admin_a):
    ComputerFactory(tenant=tenant_a)
    client.force_login(admin_a)
    assert "Tenant" not in column_headers(client.get(COMPUTERS).content.decode())


def test_smart_group_counts_honour_the_other_filters(client, msp_user, tenant_a, tenant_b):
    registered = {"registration_state": Registration.REGISTERED, "company_portal_version": "5.2"}
    for _ in range(3):
        ComputerFactory(tenant=tenant_a, compliance_status=ComplianceStatus.COMPLIANT, **registered)
    ComputerFactory(tenant=tenant_a, compliance_status=ComplianceStatus.NOT_COMPLIANT, failed_rules=["sip_off"],
                    **registered)
    ComputerFactory(tenant=tenant_b, compliance_status=ComplianceStatus.COMPLIANT, **registered)
    client.force_login(msp_user)

    page = client.get(COMPUTERS).content.decode()
    assert "Registered and compliant (4)" in filter_choices(page, "smart group")

    page = client.get(COMPUTERS, {"tenant__id__exact": tenant_a.pk,
                                  "compliance_status__exact": ComplianceStatus.NOT_COMPLIANT}).content.decode()
    groups = filter_choices(page, "smart group")
    assert "Registered and compliant (0)" in groups and "Registered (1)" in groups
    assert filter_choices(page, "failing rule")[1:] == ["System Integrity Protection (1)"]

    # A group's own choice does not narrow its counts; the other filters' do.
    page = client.get(COMPUTERS, {"smart_group": "registered_compliant"}).content.decode()
    assert "Registered (5)" in filter_choices(page, "smart group")


def test_a_tenant_filter_the_user_may_not_use_is_refused_out_loud(client, tenant_a, tenant_b, admin_a):
    ComputerFactory(tenant=tenant_a, name="Ours")
    ComputerFactory(tenant=tenant_b, name="Theirs")
    client.force_login(admin_a)
    for url in (COMPUTERS, "/admin/compliance/compliancereport/", "/admin/portal/syncrun/"):
        response = client.get(url, {"tenant__id__exact": tenant_b.pk, "q": ""}, follow=True)
        assert response.redirect_chain and response.redirect_chain[0][0] == url + "?q="
        messages = [str(m) for m in response.context["messages"]]
        assert any("You may not see the tenant this list was filtered by" in m for m in messages), messages
    # A tenant that does not exist gets the same answer (nothing told about which tenants exist).
    response = client.get(COMPUTERS, {"tenant__id__exact": 999999}, follow=True)
    assert "filter was removed" in response.content.decode() and "Ours" in response.content.decode()
    # Their own tenant is fine.
    assert client.get(COMPUTERS, {"tenant__id__exact": tenant_a.pk}).status_code == 200


# -- a Mac's page ----------------------------------------------------------------------------------------------


def test_computer_page_has_a_compact_user_table_and_clear_buttons(client, tenant_a, operator_a, msp_user):
    mac = ComputerFactory(tenant=tenant_a, compliance_status=ComplianceStatus.NOT_COMPLIANT,
                          failed_rules=["filevault_off"])
    UserAccountFactory(computer=mac, username="ada", full_name="Ada Lovelace", email="ada@alpha.example",
                       password_min_length=8, password_type="AlphaNumeric")
    client.force_login(operator_a)
    page = client.get(reverse("admin:devices_computer_change", args=[mac.pk])).content.decode()
    table = re.search(r'<table>(.*?)</table>', page[page.index('id="user_accounts-group"'):], re.S).group(1)
    thead = re.search(r"<thead>(.*?)</thead>", table, re.S).group(1)
    headers = [h for h in (re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", thead, re.S))
               if h]
    assert len(headers) <= 8, headers
    assert "Password settings" in headers and "min length: <strong>8</strong>" in table
    # Buttons that say what they do: the Intune history and the portal's change log are two buttons, and the
    # note tells the Intune delete from the portal's.
    tools = re.search(r'<ul class="object-tools">(.*?)</ul>', page, re.S).group(1)
    assert ">Intune report history<" in tools and "?computer=%d" % mac.pk in tools
    assert ">Change log<" in tools and ">History<" not in tools
    assert "Delete from Entra ID and Intune removes" in page
    for label in ("OS name", "SMC version", "NIC speed", "MAC address", "Total RAM (MB)"):
        assert label in page
    for label in ("Os name", "Smc version", "Nic speed", "Mac address", "Total ram mb"):
        assert label not in page
    client.force_login(msp_user)
    page = client.get(reverse("admin:devices_computer_change", args=[mac.pk])).content.decode()
    assert ">Delete from this portal<" in page and "Delete from this portal (at the bottom)" in page


# -- reports and sync runs -------------------------------------------------------------------------------------


def test_reports_show_inventory_state_and_compliance_in_words(client, msp_user, tenant_a):
    mac = ComputerFactory(tenant=tenant_a)
    for state, status in ((0, "compliant"), (2, "notCompliant")):
        ComplianceReport.objects.create(tenant=tenant_a, computer=mac, username="ada", inventory_state=state,
                                        compliance_status=status, status="completed")
    client.force_login(msp_user)
    page = client.get("/admin/compliance/compliancereport/").content.decode()
    assert filter_choices(page, "inventory state") == ["All", "Activated", "Deactivated", "Unresponsive"]
    assert ">Not compliant<" in page and ">notCompliant<" not in page and ">Unresponsive<" in page
    history = client.get(reverse("admin:devices_computer_change", args=[mac.pk])).content.decode()
    assert "0 activated" not in history and ">Activated<" in history


def test_sync_runs_show_durations_and_counters_for_people(client, msp_user, tenant_a):
    start = timezone.now() - datetime.timedelta(minutes=3)
    SyncRun.objects.create(tenant=tenant_a, kind="deliver", status="partial", started_at=start,
                           finished_at=start + datetime.timedelta(microseconds=10221),
                           counters={"reports_created": 12, "failed": 0, "more": True, "skipped": "Intune off"})
    client.force_login(msp_user)
    page = client.get("/admin/portal/syncrun/").content.decode()
    assert "10 ms" in page and "0:00:00.010221" not in page
    assert '<span class="counter-name">reports created</span> <span class="counter-value">12</span>' in page
    assert 'counter-name">failed<' not in page  # zeros are left out
    assert 'badge-warn">Partly failed<' in page


@pytest.mark.parametrize("seconds, text", [
    (0.010221, "10 ms"), (2.44, "2.4 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"), (None, "-"),
])
def test_duration_text(seconds, text):
    assert str(duration_text(None if seconds is None else datetime.timedelta(seconds=seconds))) == text


def test_counter_items_flatten_steps_and_drop_zeros():
    counters = {"jamf_pull": {"pages": 2, "created": 0}, "evaluate": {"compliant": 3}, "more": False}
    assert [(str(k), v) for k, v in counter_items(counters)] == [("jamf pull: pages", 2), ("evaluate: compliant", 3)]


def test_tenant_list_says_connection_in_words(client, msp_user):
    TenantFactory(name="Tested", slug="tested", last_test_ok=True, last_test_at=timezone.now())
    TenantFactory(name="Broken", slug="broken", last_test_ok=False, last_test_at=timezone.now())
    TenantFactory(name="New", slug="new")
    client.force_login(msp_user)
    page = client.get("/admin/portal/tenant/").content.decode()
    assert ">Connected<" in page and ">Test failed<" in page and ">Never tested<" in page


def test_top_navigation_replaces_the_sidebar(client, tenant_a, viewer_a, msp_user):
    client.force_login(viewer_a)
    page = client.get(COMPUTERS).content.decode()
    nav = re.search(r'<nav class="portal-nav"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r">([^<>]+)</a>", nav) == ["Dashboard", "Tenants", "Computers", "Compliance reports",
                                                 "Sync runs", "Policies", "Inventory events", "API tokens"]
    assert 'aria-current="page"' in nav and 'id="nav-sidebar"' not in page
    assert 'rel="icon"' in page
    client.force_login(msp_user)
    nav = client.get(COMPUTERS).content.decode()
    assert ">Users</a>" in nav


def test_log_entries_exist_for_token_creation_only_once(client, admin_a):
    client.force_login(admin_a)
    client.post("/admin/portal/apitoken/add/", {"user": admin_a.pk, "expires_in_days": 30})
    assert LogEntry.objects.count() == 1
