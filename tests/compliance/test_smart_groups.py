"""Smart groups as queryset methods and as admin filters with counts (SQLite and PostgreSQL alike)."""

import datetime
import re

import pytest
from django.utils import timezone

from compliance.evaluation import evaluate_tenant
from compliance.models import CompliancePolicy
from devices.models import Computer, failing_rule_q
from tests.factories import ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def fleet(tenant_a, tenant_b):
    """One Mac per smart group in tenant A (plus noise in tenant B), evaluated."""
    now = timezone.now()
    CompliancePolicy.objects.bulk_create([
        CompliancePolicy(tenant=tenant_a, name="Baseline", require_filevault=True, require_sip=True),
        CompliancePolicy(tenant=tenant_b, name="Baseline", require_filevault=True),
    ])

    def make(name, tenant=tenant_a, registered=True, portal_days=10, **kw):
        computer = ComputerFactory(
            tenant=tenant, name=name, entra_device_id="dev-%s" % name if registered else "",
            company_portal_version="5.0" if portal_days is not None else None,
            company_portal_seen_at=now - portal_days * DAY if portal_days is not None else None, **kw,
        )
        UserAccountFactory(computer=computer, username="u", entra_device_id=computer.entra_device_id,
                           entra_user_id="user-%s" % name if registered else "")
        return computer

    macs = {
        "healthy": make("healthy"),
        "unencrypted": make("unencrypted", filevault_state="NOT_ENCRYPTED"),
        "sip_off": make("sip_off", sip="DISABLED", filevault_state="NOT_ENCRYPTED"),
        "no_portal": make("no_portal", registered=False, portal_days=None),
        "portal_new": make("portal_new", registered=False, portal_days=1),
        "portal_old": make("portal_old", registered=False, portal_days=5),
        "silent": make("silent", last_check_in=now - 3 * DAY),
        "other_tenant": make("other_tenant", tenant=tenant_b, filevault_state="NOT_ENCRYPTED"),
    }
    evaluate_tenant(tenant_a.pk, now=now)
    evaluate_tenant(tenant_b.pk, now=now)
    return macs


def names(queryset):
    return sorted(queryset.values_list("name", flat=True))


def test_smart_groups(fleet, tenant_a):
    macs = Computer.objects.filter(tenant=tenant_a)
    assert names(macs.without_company_portal()) == ["no_portal"]
    assert names(macs.company_portal_not_registered()) == ["portal_new", "portal_old"]
    assert names(macs.account_not_onboarded()) == ["portal_old"]
    assert names(macs.registered()) == ["healthy", "silent", "sip_off", "unencrypted"]
    assert names(macs.registered_and_compliant()) == ["healthy", "silent"]
    assert names(macs.unresponsive()) == ["silent"]
    assert names(macs.failing_rule("filevault_off")) == ["sip_off", "unencrypted"]
    assert names(macs.failing_rule("sip_off")) == ["sip_off"]
    assert names(macs.failing_rule("no_policy")) == []


def test_failing_rule_matches_whole_codes_only(tenant_a):
    ComputerFactory(tenant=tenant_a, name="a", failed_rules=["xsip_off", "sip_offx"])
    ComputerFactory(tenant=tenant_a, name="b", failed_rules=["filevault_off", "sip_off"])
    ComputerFactory(tenant=tenant_a, name="c", failed_rules=["password_min_length"])
    ComputerFactory(tenant=tenant_a, name="d", failed_rules=[])
    assert names(Computer.objects.failing_rule("sip_off")) == ["b"]
    assert names(Computer.objects.failing_rule("password_min_length")) == ["c"]
    # "_" is a LIKE wildcard: it must not match any character
    assert names(Computer.objects.failing_rule("password_min_lengt_")) == []
    assert names(Computer.objects.exclude(failing_rule_q("sip_off"))) == ["a", "c", "d"]


@pytest.mark.parametrize("code", ["", "SIP_OFF", "sip off", '"', "%", "sip_off\" OR 1=1"])
def test_failing_rule_refuses_what_is_not_a_code(code):
    with pytest.raises(ValueError):
        failing_rule_q(code)


def filter_choices(html, parameter):
    """{value: label} of one admin filter's choices in a changelist page."""
    return dict(re.findall(r'href="\?(?:[^"]*&amp;)?%s=([\w]+)[^"]*"[^>]*>([^<]+)</a>' % parameter, html))


def test_admin_filters_show_counts_for_the_users_tenants_only(client, fleet, admin_a):
    client.force_login(admin_a)
    response = client.get("/admin/devices/computer/")
    html = response.content.decode()
    groups = filter_choices(html, "smart_group")
    assert groups["registered"] == "Registered (4)"
    assert groups["registered_compliant"] == "Registered and compliant (2)"
    assert groups["without_company_portal"] == "Without Company Portal (1)"
    assert groups["portal_not_registered"] == "Company Portal, not registered (2)"
    assert groups["account_not_onboarded"] == "Suspected AccountNotOnboarded (1)"
    assert groups["unresponsive"] == "Unresponsive (1)"
    rules = filter_choices(html, "failing_rule")
    assert rules["filevault_off"] == "FileVault (2)"  # tenant B's unencrypted Mac is not counted
    assert rules["sip_off"] == "System Integrity Protection (1)"


@pytest.mark.parametrize("query,expected", [
    ("smart_group=registered_compliant", ["healthy", "silent"]),
    ("smart_group=account_not_onboarded", ["portal_old"]),
    ("failing_rule=filevault_off", ["sip_off", "unencrypted"]),
    ("failing_rule=filevault_off&smart_group=registered", ["sip_off", "unencrypted"]),
    ("compliance_status__exact=notCompliant", ["sip_off", "unencrypted"]),
    ("failing_rule=not_a_rule", []),
])
def test_admin_filters_filter(client, fleet, msp_user, query, expected):
    client.force_login(msp_user)
    response = client.get("/admin/devices/computer/?" + query)
    assert response.status_code == 200
    shown = [c.name for c in response.context["cl"].result_list]
    assert sorted(n for n in shown if n != "other_tenant") == expected


def test_filter_counts_follow_the_chosen_tenant(client, fleet, msp_user, tenant_b):
    client.force_login(msp_user)
    everything = filter_choices(client.get("/admin/devices/computer/").content.decode(), "failing_rule")
    assert everything["filevault_off"] == "FileVault (3)"
    only_b = client.get("/admin/devices/computer/?tenant__id__exact=%d" % tenant_b.pk).content.decode()
    assert filter_choices(only_b, "failing_rule")["filevault_off"] == "FileVault (1)"


def test_changelist_queries_do_not_grow_with_the_fleet(client, fleet, admin_a, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(admin_a)
    with CaptureQueriesContext(connection) as before:
        assert client.get("/admin/devices/computer/").status_code == 200
    for n in range(10):
        ComputerFactory(tenant=tenant_a, name="more %d" % n, failed_rules=["sip_off", "filevault_off"])
    with CaptureQueriesContext(connection) as after:
        assert client.get("/admin/devices/computer/").status_code == 200
    assert len(after.captured_queries) == len(before.captured_queries)
