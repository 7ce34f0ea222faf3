"""The pure core of the evaluation: rules on one computer and its users, no database."""

import datetime
import functools
from dataclasses import dataclass, field
from typing import NamedTuple

from django.utils import timezone

from devices.models import ComplianceStatus, InventoryState, Registration
from devices.osversion import UnparseableVersion, parse_build, parse_version
from devices.rules import get_rule, sort_codes

COMPLIANT = ComplianceStatus.COMPLIANT.value
NOT_COMPLIANT = ComplianceStatus.NOT_COMPLIANT.value
REGISTERED = Registration.REGISTERED.value
NOT_STARTED = Registration.NOT_STARTED.value
ACCOUNT_NOT_ONBOARDED = Registration.ACCOUNT_NOT_ONBOARDED.value
ACTIVATED = InventoryState.ACTIVATED.value
DEACTIVATED = InventoryState.DEACTIVATED.value
UNRESPONSIVE = InventoryState.UNRESPONSIVE.value

GATEKEEPER_RANK = {"APP_STORE_AND_IDENTIFIED_DEVELOPERS": 1, "APP_STORE": 2}
GATEKEEPER_REQUIRED_RANK = {"identified_developers": 1, "app_store": 2}
PASSWORD_TYPE_RANK = {"simple": 1, "alphanumeric": 2}



class Failure(NamedTuple):
    """A failed rule: its stable code and what exactly failed on this Mac (the catalogue has the rest)."""

    code: str
    detail: str = ""

    @property
    def rule(self):
        return get_rule(self.code)

    @property
    def sentence(self):
        return self.rule.sentence

    @property
    def remedy(self):
        return self.rule.remedy


# ---------------------------------------------------------------------------------------------
# Policies, merged into the strictest requirement per rule


@dataclass
class Requirements:
    """The enabled policies of a tenant merged rule by rule into the strictest requirement.

    Failing any policy's threshold is the same as failing the strictest one, so one pass over the
    merged requirements evaluates every policy at once. Each requirement keeps the name of the
    policy that set it, for the failure's detail.
    """

    policy_count: int = 0
    policy_names: tuple = ()
    min_os_version: tuple | None = None  # (OSVersion | None, text, policy name); None version = unparseable
    max_os_version: tuple | None = None
    min_os_build: tuple | None = None
    max_os_build: tuple | None = None
    filevault: str | None = None  # the policy's name
    sip: str | None = None
    auto_login_disabled: str | None = None
    gatekeeper: tuple | None = None  # (rank, policy name)
    max_inventory_age_days: tuple | None = None  # (days, policy name)
    password_min_length: tuple | None = None
    password_type: tuple | None = None  # (rank, value, policy name)
    password_min_character_sets: tuple | None = None
    password_expiration_days: tuple | None = None
    password_history: tuple | None = None
    screensaver_minutes: tuple | None = None
    errors: list = field(default_factory=list)

    @classmethod
    def from_policies(cls, policies):
        req = cls()
        names = []
        for policy in policies:
            if not policy.enabled:
                continue
            names.append(policy.name)
            name = policy.name
            req._version("min_os_version", policy.min_os_version, name, parse_version, max)
            req._version("max_os_version", policy.max_os_version, name, parse_version, min)
            req._version("min_os_build", policy.min_os_build, name, parse_build, max)
            req._version("max_os_build", policy.max_os_build, name, parse_build, min)
            if policy.require_filevault:
                req.filevault = req.filevault or name
            if policy.require_sip:
                req.sip = req.sip or name
            if policy.require_auto_login_disabled:
                req.auto_login_disabled = req.auto_login_disabled or name
            if policy.gatekeeper:
                rank = GATEKEEPER_REQUIRED_RANK.get(policy.gatekeeper, 2)
                if req.gatekeeper is None or rank > req.gatekeeper[0]:
                    req.gatekeeper = (rank, name)
            if policy.password_type:
                rank = PASSWORD_TYPE_RANK.get(policy.password_type.lower(), 2)
                if req.password_type is None or rank > req.password_type[0]:
                    req.password_type = (rank, policy.password_type, name)
            req._number("password_min_length", policy.password_min_length, name, max)
            req._number("password_min_character_sets", policy.password_min_character_sets, name, max)
            req._number("password_history", policy.password_history, name, max)
            req._number("password_expiration_days", policy.password_expiration_days, name, min)
            req._number("screensaver_minutes", policy.screensaver_minutes, name, min)
            req._number("max_inventory_age_days", policy.max_inventory_age_days, name, min)
        req.policy_count = len(names)
        req.policy_names = tuple(names)
        return req

    def _number(self, attr, value, name, pick):
        if value is None:
            return
        current = getattr(self, attr)
        if current is None or pick(value, current[0]) != current[0]:
            setattr(self, attr, (value, name))

    def _version(self, attr, text, name, parse, pick):
        text = (text or "").strip()
        if not text:
            return
        try:
            value = parse(text)
        except UnparseableVersion:
            # A policy saved outside the form with a bad version: fail closed, loudly.
            self.errors.append("%s: %s %r cannot be parsed" % (name, attr, text))
            value = None
        current = getattr(self, attr)
        if current is not None and current[0] is None:
            return
        if current is None or value is None or pick(value, current[0]) != current[0]:
            setattr(self, attr, (value, text, name))

    @property
    def has_user_rules(self):
        return any(
            getattr(self, attr) is not None
            for attr in (
                "password_min_length", "password_type", "password_min_character_sets", "password_expiration_days",
                "password_history", "screensaver_minutes",
            )
        )


# ---------------------------------------------------------------------------------------------
# The pure rules


@functools.lru_cache(maxsize=256)
def _lines(now, unresponsive_hours, validity_days, onboarding_days):
    """The instants before which a check-in, an inventory or a Company Portal install is "too old"."""
    return (
        now - datetime.timedelta(hours=unresponsive_hours),
        now - datetime.timedelta(days=validity_days),
        now - datetime.timedelta(days=onboarding_days),
    )


@functools.lru_cache(maxsize=256)
def _days_before(now, days):
    return now - datetime.timedelta(days=days)


def lines(tenant, now):
    return _lines(now, tenant.unresponsive_after_hours, tenant.compliance_validity_days,
                  tenant.account_not_onboarded_days)


def inventory_state(computer, tenant, now):
    """0 activated, 1 deactivated (retired / not managed), 2 unresponsive (check-in older than the line)."""
    if computer.retired_at is not None or not computer.managed:
        return DEACTIVATED
    last = computer.last_check_in
    if last is None or last < lines(tenant, now)[0]:
        return UNRESPONSIVE
    return ACTIVATED


def _pair_ids(computer, user):
    """The (Entra device ID, Entra user ID) of a pair; the device ID may come from the computer."""
    if user is None:
        return computer.entra_device_id, ""
    return (user.entra_device_id or computer.entra_device_id), user.entra_user_id


def is_account_not_onboarded_suspect(computer, tenant, now):
    """Company Portal has been installed for more than the tenant's threshold."""
    seen = computer.company_portal_seen_at
    return computer.company_portal_version is not None and seen is not None and seen < lines(tenant, now)[2]


def registration_state(computer, user, tenant, now, suspect=None):
    """registered, account_not_onboarded (suspected) or not_started, for one (computer, user) pair."""
    device_id, user_id = _pair_ids(computer, user)
    if device_id and user_id:
        return REGISTERED
    if suspect if suspect is not None else is_account_not_onboarded_suspect(computer, tenant, now):
        return ACCOUNT_NOT_ONBOARDED
    return NOT_STARTED


def _check_version(value_text, requirement, parse, code_unreadable, code, newer_fails, label):
    version, text, name = requirement
    if version is None:
        return Failure(code_unreadable, "policy %s: its %s %r cannot be read" % (name, label, text))
    try:
        actual = parse(value_text)
    except UnparseableVersion as exc:
        return Failure(code_unreadable, str(exc))
    if (actual > version) if newer_fails else (actual < version):
        relation = "maximum" if newer_fails else "minimum"
        return Failure(code, "%s %s; policy %s: %s %s" % (label, value_text, name, relation, text))
    return None


def computer_failures(computer, tenant, requirements, now):
    """The failed rules decided on the computer alone (the same for each of its users)."""
    failures = []
    if computer.retired_at is not None or not computer.managed:
        failures.append(Failure("not_managed", "retired" if computer.retired_at is not None else "not managed"))
    last_inventory = computer.last_inventory_update
    validity = tenant.compliance_validity_days
    if last_inventory is None:
        failures.append(Failure("validity_expired", "no inventory received"))
    elif last_inventory < lines(tenant, now)[1]:
        failures.append(Failure(
            "validity_expired", "last inventory %s; validity period %d days" % (last_inventory.date(), validity)
        ))
    req = requirements
    if req.policy_count == 0:
        if not tenant.no_policy_compliant:
            failures.append(Failure("no_policy", "the tenant has no enabled compliance policy"))
        return failures
    os_version = computer.os_version
    if req.min_os_version is not None:
        failure = _check_version(
            os_version, req.min_os_version, parse_version, "os_version_unreadable", "os_version_too_old", False,
            "macOS",
        )
        if failure:
            failures.append(failure)
    if req.max_os_version is not None:
        failure = _check_version(
            os_version, req.max_os_version, parse_version, "os_version_unreadable", "os_version_too_new", True,
            "macOS",
        )
        if failure and failure not in failures:
            failures.append(failure)
    if req.min_os_build is not None:
        failure = _check_version(
            computer.os_build, req.min_os_build, parse_build, "os_build_unreadable", "os_build_too_old", False,
            "build",
        )
        if failure:
            failures.append(failure)
    if req.max_os_build is not None:
        failure = _check_version(
            computer.os_build, req.max_os_build, parse_build, "os_build_unreadable", "os_build_too_new", True,
            "build",
        )
        if failure and failure not in failures:
            failures.append(failure)
    if req.filevault is not None and computer.filevault_state != "ENCRYPTED":
        failures.append(Failure(
            "filevault_off", "FileVault %s; policy %s" % (_text(computer.filevault_state), req.filevault)
        ))
    if req.sip is not None and computer.sip != "ENABLED":
        failures.append(Failure("sip_off", "SIP %s; policy %s" % (_text(computer.sip), req.sip)))
    if req.gatekeeper is not None and GATEKEEPER_RANK.get(computer.gatekeeper, 0) < req.gatekeeper[0]:
        failures.append(Failure(
            "gatekeeper_off", "Gatekeeper %s; policy %s" % (_text(computer.gatekeeper), req.gatekeeper[1])
        ))
    if req.auto_login_disabled is not None and computer.auto_login_disabled is not True:
        failures.append(Failure(
            "auto_login_enabled",
            "automatic login %s; policy %s" % (
                "not collected" if computer.auto_login_disabled is None else "allowed", req.auto_login_disabled
            ),
        ))
    if req.max_inventory_age_days is not None:
        days, name = req.max_inventory_age_days
        if last_inventory is None or last_inventory < _days_before(now, days):
            failures.append(Failure(
                "inventory_too_old",
                "last inventory %s; policy %s: at most %d days" % (
                    last_inventory.date() if last_inventory else "never", name, days
                ),
            ))
    return failures


def _text(value):
    return "not collected" if value is None or value == "" else str(value).lower().replace("_", " ")


def _at_least(user, attr, requirement, code, label):
    value = getattr(user, attr) if user is not None else None
    required, name = requirement
    if value is None or value < required:
        return Failure(code, "%s %s; policy %s: at least %d" % (label, _enforced(value), name, required))
    return None


def _at_most(user, attr, requirement, code, label):
    value = getattr(user, attr) if user is not None else None
    allowed, name = requirement
    # Zero means "never" for expiration and screensaver delays: as good as NotEnforced.
    if value is None or value <= 0 or value > allowed:
        return Failure(code, "%s %s; policy %s: at most %d" % (label, _enforced(value), name, allowed))
    return None


def _enforced(value):
    return "NotEnforced" if value is None else str(value)


def user_failures(user, requirements):
    """The failed password rules of one user account (None: a Mac without accounts, nothing enforced)."""
    req = requirements
    if req.policy_count == 0:
        return []
    failures = []
    if req.password_min_length is not None:
        failures.append(_at_least(user, "password_min_length", req.password_min_length, "password_min_length",
                                  "minimum length"))
    if req.password_type is not None:
        rank, required, name = req.password_type
        value = user.password_type if user is not None else None
        if value is None or PASSWORD_TYPE_RANK.get(value.lower(), 0) < rank:
            failures.append(Failure(
                "password_type", "password type %s; policy %s: %s" % (_enforced(value), name, required)
            ))
    if req.password_min_character_sets is not None:
        failures.append(_at_least(user, "password_min_complex_characters", req.password_min_character_sets,
                                  "password_character_sets", "complex characters"))
    if req.password_expiration_days is not None:
        failures.append(_at_most(user, "password_max_age_days", req.password_expiration_days,
                                 "password_expiration", "expiration days"))
    if req.password_history is not None:
        failures.append(_at_least(user, "password_history_depth", req.password_history, "password_history",
                                  "password history"))
    if req.screensaver_minutes is not None:
        failures.append(_at_most(user, "screensaver_idle_minutes", req.screensaver_minutes, "screensaver_idle",
                                 "screensaver minutes"))
    return [f for f in failures if f is not None]


@dataclass
class PairResult:
    """The evaluation of one (computer, user account) pair; ``user`` is None for a Mac without accounts."""

    user: object
    registration_state: str
    compliance_status: str
    failures: list

    @property
    def failed_codes(self):
        return sort_codes(f.code for f in self.failures)


@dataclass
class ComputerResult:
    """The evaluation of a computer: its state, registration, status (worst pair) and every pair."""

    inventory_state: int
    registration_state: str
    compliance_status: str
    failures: list
    pairs: list

    @property
    def failed_codes(self):
        return sort_codes(f.code for f in self.failures)


def evaluate_computer(computer, users, tenant, requirements, now):
    """Evaluate a computer and each of its user accounts. ``requirements``: a :class:`Requirements`."""
    state = inventory_state(computer, tenant, now)
    base = computer_failures(computer, tenant, requirements, now)
    suspect = is_account_not_onboarded_suspect(computer, tenant, now)
    pairs = []
    for user in users or [None]:
        failures = base + user_failures(user, requirements)
        pairs.append(PairResult(
            user=user,
            registration_state=registration_state(computer, user, tenant, now, suspect),
            compliance_status=NOT_COMPLIANT if failures else COMPLIANT,
            failures=failures,
        ))
    registered = [pair for pair in pairs if pair.registration_state == REGISTERED]
    counted = registered or pairs
    failures = []
    seen = set()
    for pair in counted:
        for failure in pair.failures:
            if failure.code not in seen:
                seen.add(failure.code)
                failures.append(failure)
    if registered:
        registration = REGISTERED
    elif any(pair.registration_state == ACCOUNT_NOT_ONBOARDED for pair in pairs):
        registration = ACCOUNT_NOT_ONBOARDED
    else:
        registration = NOT_STARTED
    return ComputerResult(
        inventory_state=state,
        registration_state=registration,
        compliance_status=NOT_COMPLIANT if failures else COMPLIANT,
        failures=failures,
        pairs=pairs,
    )


def explain(computer, now=None):
    """Evaluate one saved computer live, with the details of each failure (for its admin page)."""
    from compliance.models import CompliancePolicy

    now = now or timezone.now()
    tenant = computer.tenant
    requirements = Requirements.from_policies(CompliancePolicy.objects.filter(tenant=tenant, enabled=True))
    return evaluate_computer(computer, list(computer.user_accounts.all()), tenant, requirements, now)
