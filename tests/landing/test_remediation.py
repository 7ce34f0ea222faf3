"""The remediation page lists the tenant's enabled policy rules in words for the person at the Mac."""

import html

import pytest

from compliance.models import CompliancePolicy
from devices.rules import RULES
from portal import landing_remediation
from tests.factories import TenantFactory


@pytest.fixture
def alpha(db):
    return TenantFactory(slug="alpha", name="Alpha Corp")


def rules_on_page(client, slug="alpha"):
    body = client.get("/r/%s/remediation/" % slug).content.decode()
    return [
        html.unescape(line.split('<strong class="rule">')[1].split("</strong>")[0])
        for line in body.splitlines()
        if 'class="rule"' in line
    ]


def test_without_policies_the_page_gives_generic_advice(client, alpha):
    assert rules_on_page(client) == [str(text) for text, _how in landing_remediation.GENERIC_REMEDIATION]


def test_enabled_rules_in_catalogue_order_with_their_values(client, alpha):
    CompliancePolicy.objects.create(
        tenant=alpha,
        name="Baseline",
        min_os_version="14.7.1",
        require_filevault=True,
        gatekeeper="app_store",
        password_min_length=12,
        password_type="AlphaNumeric",
        screensaver_minutes=5,
    )
    assert rules_on_page(client) == [
        "Run macOS 14.7.1 or later",
        "Turn on FileVault disk encryption",
        "Allow apps from the App Store only",
        "Use a login password of at least 12 characters",
        "Use a login password with both letters and numbers",
        "Lock the screen after at most 5 minutes of inactivity",
    ]


def test_several_policies_merge_into_the_strictest_and_disabled_ones_do_not_count(client, alpha):
    CompliancePolicy.objects.create(tenant=alpha, name="A", min_os_version="14.0", password_min_length=8)
    CompliancePolicy.objects.create(tenant=alpha, name="B", min_os_version="15.1", password_min_length=12)
    CompliancePolicy.objects.create(tenant=alpha, name="Off", enabled=False, require_sip=True, password_history=5)
    assert rules_on_page(client) == ["Run macOS 15.1 or later", "Use a login password of at least 12 characters"]


def test_singular_wording(client, alpha):
    CompliancePolicy.objects.create(
        tenant=alpha, name="One", password_min_character_sets=1, password_history=1, max_inventory_age_days=1
    )
    assert rules_on_page(client) == [
        "Let your Mac report to IT at least every day",
        "Include at least 1 symbol, such as ! # or %, in your login password",
        "Do not reuse your last password",
    ]


def test_another_tenants_policy_does_not_show(client, alpha):
    other = TenantFactory(slug="other")
    CompliancePolicy.objects.create(tenant=other, name="Strict", require_filevault=True)
    assert "Turn on FileVault disk encryption" not in rules_on_page(client)
    assert rules_on_page(client, "other") == ["Turn on FileVault disk encryption"]


def test_a_policy_change_shows_at_once_and_the_page_costs_no_query(client, alpha, django_assert_num_queries):
    rules_on_page(client)
    policy = CompliancePolicy.objects.create(tenant=alpha, name="New", require_auto_login_disabled=True)
    assert rules_on_page(client) == ["Turn off automatic login"]
    with django_assert_num_queries(0):
        assert rules_on_page(client) == ["Turn off automatic login"]
    policy.delete()
    assert "Turn off automatic login" not in rules_on_page(client)


def test_every_policy_rule_of_the_catalogue_has_end_user_words():
    """A new rule in compliance/rules.py needs words here, or the page would silently skip it."""
    for code, rule in RULES.items():
        if rule.policy_fields and not code.endswith("_unreadable"):
            assert code in landing_remediation._REQUIREMENT_OF, code
