"""The catalogue of compliance rule codes: what each one means to people and how Jamf Pro fixes it.

The codes are stable: they are stored in ``Computer.failed_rules`` / ``UserAccount.failed_rules``,
returned by the REST API, shown on the landing pages and sent in report payloads. Add codes; never
rename or reuse one. The remedies follow the best practice of Jamf's Intune integration guide
(seed summary, step 7): enforce each Intune rule with a Jamf Pro configuration profile or policy
scoped to the smart group of Macs that have Company Portal and an Entra device ID.

It lives in devices beside the fields that store the codes, so every page that shows a Mac can describe them;
compliance's evaluation (which decides them) imports it from here (docs/architecture.md).
"""

from dataclasses import dataclass

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

# Where a rule is decided: on the tenant's settings, on the computer, or per user account.
TENANT, COMPUTER, USER = "tenant", "computer", "user"

REGISTERED_GROUP = _("the smart group of registered Macs (Company Portal installed and an Entra device ID)")


@dataclass(frozen=True)
class Rule:
    """One rule: a stable code, a title, a sentence for people, and the Jamf Pro remedy."""

    code: str
    title: str
    sentence: str
    remedy: str
    scope: str
    policy_fields: tuple = ()  # the CompliancePolicy fields that switch the rule on

    def as_dict(self):
        return {
            "code": self.code, "title": str(self.title), "sentence": str(self.sentence), "remedy": str(self.remedy),
            "scope": self.scope,
        }


def _profile(payload):
    """A remedy that deploys a configuration profile to the registered Macs (translated when shown)."""
    return format_lazy(_("Deploy a configuration profile with the {payload} to {group}."), payload=payload,
                       group=REGISTERED_GROUP)


_RULES = [
    Rule(
        "not_managed", _("Managed by Jamf Pro"), _("The Mac is no longer managed by Jamf Pro."),
        _("Re-enroll the Mac in Jamf Pro (user-initiated enrollment or Automated Device Enrollment)."), COMPUTER,
    ),
    Rule(
        "validity_expired", _("Compliance validity period"),
        _("The Mac has not sent an inventory within the compliance validity period."),
        _("Make sure the Mac checks in and submits inventory: an inventory-update policy on the recurring "
          "check-in (Update Inventory), or run 'sudo jamf recon' on the Mac."),
        TENANT,
    ),
    Rule(
        "no_policy", _("A compliance policy applies"), _("No enabled compliance policy covers this Mac."),
        _("Create and enable a compliance policy for this tenant in the portal, or allow Macs without a policy "
          "in the tenant's rules."),
        TENANT,
    ),
    Rule(
        "os_version_unreadable", _("Readable macOS version"), _("The Mac's macOS version cannot be read."),
        _("Run an inventory update (Update Inventory policy or 'sudo jamf recon') so Jamf Pro collects the macOS "
          "version."),
        COMPUTER, ("min_os_version", "max_os_version"),
    ),
    Rule(
        "os_version_too_old", _("Minimum macOS version"), _("macOS is older than the policy's minimum version."),
        _("Send a managed software update (mass action or software update plan) to these Macs, and deploy a "
          "configuration profile with the Software Update payload that enforces updates to the smart group of "
          "registered Macs."),
        COMPUTER, ("min_os_version",),
    ),
    Rule(
        "os_version_too_new", _("Maximum macOS version"), _("macOS is newer than the policy's maximum version."),
        _profile(_("Restrictions payload deferring major software updates")), COMPUTER,
        ("max_os_version",),
    ),
    Rule(
        "os_build_unreadable", _("Readable macOS build"), _("The Mac's macOS build cannot be read."),
        _("Run an inventory update (Update Inventory policy or 'sudo jamf recon') so Jamf Pro collects the macOS "
          "build."),
        COMPUTER, ("min_os_build", "max_os_build"),
    ),
    Rule(
        "os_build_too_old", _("Minimum macOS build"), _("The macOS build is older than the policy's minimum build."),
        _("Send a managed software update (including Rapid Security Responses) to these Macs, and deploy a "
          "configuration profile with the Software Update payload that enforces updates to the smart group of "
          "registered Macs."),
        COMPUTER, ("min_os_build",),
    ),
    Rule(
        "os_build_too_new", _("Maximum macOS build"), _("The macOS build is newer than the policy's maximum build."),
        _profile(_("Restrictions payload deferring software updates")), COMPUTER, ("max_os_build",),
    ),
    Rule(
        "filevault_off", _("FileVault"), _("FileVault is off."),
        _profile(_("Security & Privacy payload that enables FileVault (disk encryption)")), COMPUTER,
        ("require_filevault",),
    ),
    Rule(
        "sip_off", _("System Integrity Protection"), _("System Integrity Protection is off or was not collected."),
        _("Turn System Integrity Protection back on from macOS Recovery ('csrutil enable'); Jamf Pro cannot enable "
          "it remotely. Scope a Self Service notice or a help-desk ticket to the Macs in this list."),
        COMPUTER, ("require_sip",),
    ),
    Rule(
        "gatekeeper_off", _("Gatekeeper"), _("Gatekeeper allows apps from more sources than the policy permits."),
        _profile(_("Security & Privacy payload that sets Gatekeeper to the allowed app sources")),
        COMPUTER, ("gatekeeper",),
    ),
    Rule(
        "auto_login_enabled", _("Automatic login disabled"), _("Automatic login is not disabled."),
        _profile(_("Login Window payload that disables automatic login")), COMPUTER,
        ("require_auto_login_disabled",),
    ),
    Rule(
        "inventory_too_old", _("Maximum days since last inventory"),
        _("The last inventory is older than the policy allows."),
        _("Add an inventory-update policy on the recurring check-in (Update Inventory) scoped to "
          "the smart group of registered Macs."),
        COMPUTER, ("max_inventory_age_days",),
    ),
    Rule(
        "password_min_length", _("Minimum password length"),
        _("The password length is not enforced or is shorter than the policy requires."),
        _profile(_("Passcode payload (minimum length)")), USER, ("password_min_length",),
    ),
    Rule(
        "password_type", _("Password type"),
        _("The password type is not enforced or is simpler than the policy requires."),
        _profile(_("Passcode payload (require alphanumeric value)")), USER, ("password_type",),
    ),
    Rule(
        "password_character_sets", _("Minimum character sets"),
        _("Complex characters are not enforced or fewer than the policy requires."),
        _profile(_("Passcode payload (minimum number of complex characters)")), USER,
        ("password_min_character_sets",),
    ),
    Rule(
        "password_expiration", _("Password expiration"),
        _("Password expiration is not enforced or is longer than the policy allows."),
        _profile(_("Passcode payload (maximum passcode age)")), USER, ("password_expiration_days",),
    ),
    Rule(
        "password_history", _("Password history"),
        _("Password reuse is not limited or fewer previous passwords are remembered than the policy requires."),
        _profile(_("Passcode payload (passcode history)")), USER, ("password_history",),
    ),
    Rule(
        "screensaver_idle", _("Screensaver after inactivity"),
        _("The screensaver delay is not enforced or is longer than the policy allows."),
        _profile(_("Login Window (screen saver) payload that starts the screensaver and asks for the "
                             "password")),
        USER, ("screensaver_minutes",),
    ),
]

RULES = {rule.code: rule for rule in _RULES}
CODES = tuple(RULES)
ORDER = {code: index for index, code in enumerate(CODES)}


def get_rule(code):
    """The rule for a code; an unknown code (from a newer version) gets a plain stand-in, never an error."""
    rule = RULES.get(code)
    if rule is None:
        rule = Rule(code, code, _("Rule %(code)s failed.") % {"code": code}, "", COMPUTER)
    return rule


def _order(code):
    return (ORDER.get(code, len(ORDER)), code)


def sort_codes(codes):
    """Codes in catalogue order, each once."""
    codes = set(codes)
    if len(codes) < 2:
        return list(codes)
    return sorted(codes, key=_order)


def describe(codes):
    """The rules behind stored codes, in catalogue order (for pages, the API and report payloads)."""
    return [get_rule(code) for code in sort_codes(codes)]
