"""The pure rules, table by table, on unsaved model instances and a frozen clock (no database)."""

import datetime

import pytest

from compliance.evaluation import (
    Requirements,
    computer_failures,
    evaluate_computer,
    inventory_state,
    registration_state,
    user_failures,
)
from compliance.models import CompliancePolicy
from devices.models import Computer, UserAccount
from devices.rules import CODES, RULES, describe, get_rule
from portal.models import Tenant

NOW = datetime.datetime(2026, 3, 10, 12, 0, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)


def tenant(**kw):
    return Tenant(name="T", slug="t", **kw)


def mac(**kw):
    values = {
        "managed": True, "last_check_in": NOW - HOUR, "last_inventory_update": NOW - HOUR, "os_version": "15.1",
        "os_build": "24B83", "filevault_state": "ENCRYPTED", "sip": "ENABLED",
        "gatekeeper": "APP_STORE_AND_IDENTIFIED_DEVELOPERS", "auto_login_disabled": True,
        "company_portal_version": "5.2411.2", "company_portal_seen_at": NOW - 30 * DAY,
    }
    values.update(kw)
    return Computer(**values)


def user(**kw):
    values = {"username": "ada", "entra_device_id": "dev-1", "entra_user_id": "user-1"}
    values.update(kw)
    return UserAccount(**values)


def policy(name="Baseline", **kw):
    return CompliancePolicy(name=name, **kw)


def codes_for(computer, *policies, t=None, users=None):
    result = evaluate_computer(computer, users if users is not None else [user()], t or tenant(),
                               Requirements.from_policies(policies), NOW)
    return result.failed_codes


# -- Inventory state --------------------------------------------------------------------------


@pytest.mark.parametrize("kw,hours,expected", [
    ({"last_check_in": NOW - HOUR}, 24, 0),
    ({"last_check_in": NOW - 24 * HOUR}, 24, 0),  # exactly on the line: still activated
    ({"last_check_in": NOW - 24 * HOUR - SECOND}, 24, 2),
    ({"last_check_in": NOW - 40 * HOUR}, 48, 0),
    ({"last_check_in": NOW - 49 * HOUR}, 48, 2),
    ({"last_check_in": None}, 24, 2),  # never checked in
    ({"retired_at": NOW - DAY}, 24, 1),
    ({"managed": False}, 24, 1),
    ({"managed": False, "last_check_in": NOW - 90 * DAY}, 24, 1),  # deactivated beats unresponsive
    ({"last_check_in": NOW + HOUR}, 24, 0),  # a clock slightly ahead is not a reason to drop a Mac
])
def test_inventory_state(kw, hours, expected):
    assert inventory_state(mac(**kw), tenant(unresponsive_after_hours=hours), NOW) == expected


def test_last_inventory_update_does_not_count_as_check_in():
    computer = mac(last_check_in=NOW - 3 * DAY, last_inventory_update=NOW - HOUR)
    assert inventory_state(computer, tenant(), NOW) == 2


# -- Registration, per user -------------------------------------------------------------------


@pytest.mark.parametrize("computer_kw,user_kw,days,expected", [
    ({}, {}, 3, "registered"),
    ({"entra_device_id": "dev-9"}, {"entra_device_id": ""}, 3, "registered"),  # the computer's device ID
    ({}, {"entra_user_id": ""}, 3, "account_not_onboarded"),  # portal for 30 days, no user ID
    ({}, {"entra_device_id": "", "entra_user_id": ""}, 3, "account_not_onboarded"),
    ({"company_portal_seen_at": NOW - 3 * DAY}, {"entra_device_id": "", "entra_user_id": ""}, 3, "not_started"),
    ({"company_portal_seen_at": NOW - 3 * DAY - SECOND}, {"entra_device_id": "", "entra_user_id": ""}, 3,
     "account_not_onboarded"),
    ({"company_portal_seen_at": NOW - 5 * DAY}, {"entra_device_id": "", "entra_user_id": ""}, 7, "not_started"),
    ({"company_portal_version": None, "company_portal_seen_at": None}, {"entra_device_id": "", "entra_user_id": ""},
     3, "not_started"),
    ({"company_portal_version": "", "company_portal_seen_at": NOW - 4 * DAY},  # installed, version unknown
     {"entra_device_id": "", "entra_user_id": ""}, 3, "account_not_onboarded"),
    ({"company_portal_seen_at": None}, {"entra_device_id": "", "entra_user_id": ""}, 3, "not_started"),
])
def test_registration_state(computer_kw, user_kw, days, expected):
    t = tenant(account_not_onboarded_days=days)
    assert registration_state(mac(**computer_kw), user(**user_kw), t, NOW) == expected


def test_computer_registration_is_registered_when_any_user_is():
    users = [user(username="admin", entra_device_id="", entra_user_id=""), user()]
    result = evaluate_computer(mac(), users, tenant(), Requirements.from_policies([policy()]), NOW)
    assert result.registration_state == "registered"
    assert [pair.registration_state for pair in result.pairs] == ["account_not_onboarded", "registered"]


def test_computer_registration_without_users():
    result = evaluate_computer(mac(company_portal_seen_at=NOW - HOUR), [], tenant(),
                               Requirements.from_policies([policy()]), NOW)
    assert result.registration_state == "not_started"
    result = evaluate_computer(mac(), [], tenant(), Requirements.from_policies([policy()]), NOW)
    assert result.registration_state == "account_not_onboarded"


# -- Computer rules ---------------------------------------------------------------------------


COMPUTER_CASES = [
    # (policy fields, computer fields, expected failed codes)
    ({"require_filevault": True}, {"filevault_state": "ENCRYPTED"}, []),
    ({"require_filevault": True}, {"filevault_state": "NOT_ENCRYPTED"}, ["filevault_off"]),
    ({"require_filevault": True}, {"filevault_state": "ENCRYPTING"}, ["filevault_off"]),
    ({"require_filevault": True}, {"filevault_state": "DECRYPTING"}, ["filevault_off"]),
    ({"require_filevault": True}, {"filevault_state": "UNKNOWN"}, ["filevault_off"]),
    ({"require_filevault": True}, {"filevault_state": None}, ["filevault_off"]),
    ({"require_filevault": False}, {"filevault_state": None}, []),
    ({"require_sip": True}, {"sip": "ENABLED"}, []),
    ({"require_sip": True}, {"sip": "DISABLED"}, ["sip_off"]),
    ({"require_sip": True}, {"sip": "NOT_COLLECTED"}, ["sip_off"]),  # seed: FALSE when not yet collected
    ({"require_sip": True}, {"sip": "NOT_AVAILABLE"}, ["sip_off"]),
    ({"require_sip": True}, {"sip": None}, ["sip_off"]),
    ({"gatekeeper": "identified_developers"}, {"gatekeeper": "APP_STORE_AND_IDENTIFIED_DEVELOPERS"}, []),
    ({"gatekeeper": "identified_developers"}, {"gatekeeper": "APP_STORE"}, []),
    ({"gatekeeper": "identified_developers"}, {"gatekeeper": "DISABLED"}, ["gatekeeper_off"]),
    ({"gatekeeper": "identified_developers"}, {"gatekeeper": "NOT_COLLECTED"}, ["gatekeeper_off"]),
    ({"gatekeeper": "identified_developers"}, {"gatekeeper": None}, ["gatekeeper_off"]),
    ({"gatekeeper": "app_store"}, {"gatekeeper": "APP_STORE"}, []),
    ({"gatekeeper": "app_store"}, {"gatekeeper": "APP_STORE_AND_IDENTIFIED_DEVELOPERS"}, ["gatekeeper_off"]),
    ({"require_auto_login_disabled": True}, {"auto_login_disabled": True}, []),
    ({"require_auto_login_disabled": True}, {"auto_login_disabled": False}, ["auto_login_enabled"]),
    ({"require_auto_login_disabled": True}, {"auto_login_disabled": None}, ["auto_login_enabled"]),
    ({"min_os_version": "14.7.1"}, {"os_version": "14.7.1"}, []),
    ({"min_os_version": "14.7.1"}, {"os_version": "14.7.1 (a)"}, []),
    ({"min_os_version": "14.7.1"}, {"os_version": "15"}, []),
    ({"min_os_version": "14.7.1"}, {"os_version": "14.7"}, ["os_version_too_old"]),
    ({"min_os_version": "14.7.1"}, {"os_version": "14.6.1"}, ["os_version_too_old"]),
    ({"min_os_version": "10.10"}, {"os_version": "10.9"}, ["os_version_too_old"]),  # not compared as text
    ({"min_os_version": "10.10"}, {"os_version": "10.12.4"}, []),
    ({"min_os_version": "14.7.1 (a)"}, {"os_version": "14.7.1"}, ["os_version_too_old"]),
    ({"min_os_version": "14.7.1"}, {"os_version": ""}, ["os_version_unreadable"]),
    ({"min_os_version": "14.7.1"}, {"os_version": "15.2 beta 3"}, ["os_version_unreadable"]),
    ({"max_os_version": "14.99"}, {"os_version": "15.0"}, ["os_version_too_new"]),
    ({"max_os_version": "15"}, {"os_version": "15.0"}, []),
    ({"max_os_version": "15"}, {"os_version": "15.0.1"}, ["os_version_too_new"]),
    ({"min_os_version": "14", "max_os_version": "15"}, {"os_version": "garbage"}, ["os_version_unreadable"]),
    ({"min_os_build": "23H222"}, {"os_build": "23H222"}, []),
    ({"min_os_build": "23H222"}, {"os_build": "24A348"}, []),
    ({"min_os_build": "23H222"}, {"os_build": "23G93"}, ["os_build_too_old"]),
    ({"min_os_build": "23H222"}, {"os_build": ""}, ["os_build_unreadable"]),
    ({"max_os_build": "23H222"}, {"os_build": "24A348"}, ["os_build_too_new"]),
    ({"max_inventory_age_days": 7}, {"last_inventory_update": NOW - 7 * DAY}, []),  # exactly the limit
    ({"max_inventory_age_days": 7}, {"last_inventory_update": NOW - 7 * DAY - SECOND}, ["inventory_too_old"]),
    ({"max_inventory_age_days": 7}, {"last_inventory_update": None}, ["inventory_too_old", "validity_expired"]),
    ({}, {"last_inventory_update": NOW - 30 * DAY}, []),  # exactly the validity period
    ({}, {"last_inventory_update": NOW - 30 * DAY - SECOND}, ["validity_expired"]),
    ({}, {"managed": False}, ["not_managed"]),
    ({}, {"retired_at": NOW - DAY}, ["not_managed"]),
    ({}, {"last_check_in": NOW - 10 * DAY}, []),  # unresponsive is a state, not a compliance rule
]


@pytest.mark.parametrize("policy_kw,computer_kw,expected", COMPUTER_CASES)
def test_computer_rules(policy_kw, computer_kw, expected):
    assert codes_for(mac(**computer_kw), policy(**policy_kw)) == sorted(expected, key=CODES.index)


def test_validity_period_is_the_tenants():
    computer = mac(last_inventory_update=NOW - 10 * DAY)
    assert codes_for(computer, policy(), t=tenant(compliance_validity_days=10)) == []
    assert codes_for(computer, policy(), t=tenant(compliance_validity_days=9)) == ["validity_expired"]


def test_failure_details_say_what_failed():
    failures = computer_failures(
        mac(os_version="13.6.9", filevault_state="NOT_ENCRYPTED"), tenant(),
        Requirements.from_policies([policy("Baseline", min_os_version="14.0", require_filevault=True)]), NOW,
    )
    details = {f.code: f.detail for f in failures}
    assert details["os_version_too_old"] == "macOS 13.6.9; policy Baseline: minimum 14.0"
    assert "not encrypted" in details["filevault_off"] and "Baseline" in details["filevault_off"]
    assert {str(f.sentence) for f in failures} == {"macOS is older than the policy's minimum version.",
                                                   "FileVault is off."}
    assert all("smart group of registered Macs" in str(f.remedy) for f in failures)


# -- Password rules, per user -----------------------------------------------------------------


USER_CASES = [
    ({"password_min_length": 12}, {"password_min_length": None}, ["password_min_length"]),  # NotEnforced
    ({"password_min_length": 12}, {"password_min_length": 8}, ["password_min_length"]),
    ({"password_min_length": 12}, {"password_min_length": 12}, []),
    ({"password_min_length": 12}, {"password_min_length": 16}, []),
    ({"password_type": "AlphaNumeric"}, {"password_type": None}, ["password_type"]),
    ({"password_type": "AlphaNumeric"}, {"password_type": "Simple"}, ["password_type"]),
    ({"password_type": "AlphaNumeric"}, {"password_type": "AlphaNumeric"}, []),
    ({"password_type": "Simple"}, {"password_type": None}, ["password_type"]),
    ({"password_type": "Simple"}, {"password_type": "Simple"}, []),
    ({"password_type": "Simple"}, {"password_type": "AlphaNumeric"}, []),
    ({"password_min_character_sets": 2}, {"password_min_complex_characters": None}, ["password_character_sets"]),
    ({"password_min_character_sets": 2}, {"password_min_complex_characters": 1}, ["password_character_sets"]),
    ({"password_min_character_sets": 2}, {"password_min_complex_characters": 2}, []),
    ({"password_expiration_days": 90}, {"password_max_age_days": None}, ["password_expiration"]),
    ({"password_expiration_days": 90}, {"password_max_age_days": 0}, ["password_expiration"]),  # never expires
    ({"password_expiration_days": 90}, {"password_max_age_days": 91}, ["password_expiration"]),
    ({"password_expiration_days": 90}, {"password_max_age_days": 90}, []),
    ({"password_expiration_days": 90}, {"password_max_age_days": 30}, []),
    ({"password_history": 5}, {"password_history_depth": None}, ["password_history"]),
    ({"password_history": 5}, {"password_history_depth": 4}, ["password_history"]),
    ({"password_history": 5}, {"password_history_depth": 5}, []),
    ({"screensaver_minutes": 10}, {"screensaver_idle_minutes": None}, ["screensaver_idle"]),
    ({"screensaver_minutes": 10}, {"screensaver_idle_minutes": 11}, ["screensaver_idle"]),
    ({"screensaver_minutes": 10}, {"screensaver_idle_minutes": 10}, []),
    ({"screensaver_minutes": 10}, {"screensaver_idle_minutes": 5}, []),
    ({"screensaver_minutes": 10}, {"screensaver_idle_minutes": 0}, ["screensaver_idle"]),
    ({}, {}, []),  # no password rule: NotEnforced everywhere is fine
]


@pytest.mark.parametrize("policy_kw,user_kw,expected", USER_CASES)
def test_password_rules(policy_kw, user_kw, expected):
    failures = user_failures(user(**user_kw), Requirements.from_policies([policy(**policy_kw)]))
    assert [f.code for f in failures] == expected


def test_password_rules_are_per_user():
    strict = policy(password_min_length=12)
    ada = user(username="ada", password_min_length=12)
    bob = user(username="bob", password_min_length=6, entra_user_id="user-2")
    result = evaluate_computer(mac(), [ada, bob], tenant(), Requirements.from_policies([strict]), NOW)
    assert [(p.user.username, p.compliance_status, p.failed_codes) for p in result.pairs] == [
        ("ada", "compliant", []), ("bob", "notCompliant", ["password_min_length"]),
    ]
    assert result.compliance_status == "notCompliant"  # the worst pair
    assert result.failed_codes == ["password_min_length"]


def test_computer_status_counts_only_reported_pairs_when_some_user_is_registered():
    # The local admin account is never registered with Entra ID, so it is never reported to Intune.
    admin = user(username="admin", entra_device_id="", entra_user_id="", password_min_length=None)
    ada = user(password_min_length=12)
    result = evaluate_computer(mac(), [admin, ada], tenant(), Requirements.from_policies(
        [policy(password_min_length=12)]), NOW)
    assert [p.compliance_status for p in result.pairs] == ["notCompliant", "compliant"]
    assert result.compliance_status == "compliant"


def test_computer_status_is_the_worst_of_all_pairs_when_nobody_is_registered():
    users = [user(username="a", entra_user_id="", password_min_length=12),
             user(username="b", entra_user_id="", password_min_length=4)]
    result = evaluate_computer(mac(), users, tenant(), Requirements.from_policies([policy(password_min_length=12)]),
                               NOW)
    assert result.compliance_status == "notCompliant"
    assert result.failed_codes == ["password_min_length"]


def test_a_mac_without_accounts_fails_password_rules_it_cannot_show():
    assert codes_for(mac(), policy(password_min_length=8), users=[]) == ["password_min_length"]
    assert codes_for(mac(), policy(require_filevault=True), users=[]) == []


# -- Several policies, disabled policies, no policy -------------------------------------------


def test_every_enabled_policy_applies_and_the_strictest_threshold_wins():
    loose = policy("Loose", min_os_version="13.0", password_min_length=8, password_expiration_days=365)
    strict = policy("Strict", min_os_version="14.7.1", password_min_length=12, require_sip=True,
                    password_expiration_days=90)
    computer = mac(os_version="14.6.1", sip="DISABLED")
    ada = user(password_min_length=10, password_max_age_days=180)
    result = evaluate_computer(computer, [ada], tenant(), Requirements.from_policies([loose, strict]), NOW)
    assert result.failed_codes == ["os_version_too_old", "sip_off", "password_min_length", "password_expiration"]
    details = {f.code: f.detail for f in result.failures}
    assert "policy Strict" in details["os_version_too_old"]
    assert "policy Strict: at least 12" in details["password_min_length"]
    # order of the policies does not matter
    again = evaluate_computer(computer, [ada], tenant(), Requirements.from_policies([strict, loose]), NOW)
    assert again.failed_codes == result.failed_codes


def test_max_os_version_takes_the_lowest_maximum():
    requirements = Requirements.from_policies([policy("A", max_os_version="15.1"), policy("B", max_os_version="14.9")])
    assert requirements.max_os_version[1:] == ("14.9", "B")


def test_gatekeeper_and_password_type_take_the_strictest():
    requirements = Requirements.from_policies([
        policy("A", gatekeeper="identified_developers", password_type="AlphaNumeric"),
        policy("B", gatekeeper="app_store", password_type="Simple"),
    ])
    assert requirements.gatekeeper == (2, "B")
    assert requirements.password_type == (2, "AlphaNumeric", "A")


def test_disabled_policies_do_not_apply():
    off = policy(enabled=False, require_filevault=True)
    assert codes_for(mac(filevault_state="NOT_ENCRYPTED"), off) == ["no_policy"]


@pytest.mark.parametrize("no_policy_compliant,computer_kw,expected", [
    (False, {}, ["no_policy"]),  # the default, as Microsoft recommends under conditional access
    (True, {}, []),
    (True, {"last_inventory_update": NOW - 31 * DAY}, ["validity_expired"]),
    (True, {"managed": False}, ["not_managed"]),
    (False, {"managed": False}, ["not_managed", "no_policy"]),
])
def test_no_policy(no_policy_compliant, computer_kw, expected):
    t = tenant(no_policy_compliant=no_policy_compliant)
    assert codes_for(mac(**computer_kw), t=t) == expected


def test_a_policy_version_that_cannot_be_parsed_fails_closed():
    bad = policy(min_os_version="fourteen")  # saved without clean(), e.g. by a script
    requirements = Requirements.from_policies([bad])
    assert requirements.errors
    assert codes_for(mac(os_version="15.1"), bad) == ["os_version_unreadable"]


def test_compliant_mac_passes_a_full_policy():
    full = policy(
        min_os_version="14.0", max_os_version="15.9", min_os_build="23A344", require_filevault=True,
        require_sip=True, gatekeeper="identified_developers", require_auto_login_disabled=True,
        password_min_length=12, password_type="AlphaNumeric", password_min_character_sets=2,
        password_expiration_days=90, password_history=5, screensaver_minutes=10, max_inventory_age_days=7,
    )
    ada = user(password_min_length=14, password_type="AlphaNumeric", password_min_complex_characters=2,
               password_max_age_days=60, password_history_depth=10, screensaver_idle_minutes=5)
    result = evaluate_computer(mac(), [ada], tenant(), Requirements.from_policies([full]), NOW)
    assert (result.compliance_status, result.failed_codes, result.inventory_state) == ("compliant", [], 0)


# -- The catalogue ------------------------------------------------------------------------------


def test_every_rule_has_a_sentence_and_a_remedy():
    for code, rule in RULES.items():
        assert rule.code == code
        assert str(rule.sentence).endswith(".") and str(rule.remedy).endswith("."), code
        assert rule.as_dict()["code"] == code


def test_every_policy_setting_has_a_rule():
    covered = {name for rule in RULES.values() for name in rule.policy_fields}
    settings = {
        f.name for f in CompliancePolicy._meta.get_fields()
        if f.concrete and f.name not in {"id", "tenant", "name", "description", "enabled", "created_at", "updated_at"}
    }
    assert settings == covered


def test_unknown_codes_are_described_not_fatal():
    assert get_rule("from_the_future").code == "from_the_future"
    assert [r.code for r in describe(["sip_off", "filevault_off", "sip_off"])] == ["filevault_off", "sip_off"]
