"""What the remediation landing page tells the person at a Mac: the tenant's enabled rules in plain words.

The rules come from the tenant's enabled compliance policies, merged into the strictest
requirement per rule (``compliance.evaluation.Requirements``), in the catalogue's order
(``devices.rules``); a tenant without policies gets a generic list. The result is cached per
tenant and language like the tenant's landing settings, and a policy save clears it, so the page
costs no query.
"""

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

GENERIC_REMEDIATION = [
    (
        _("Keep macOS up to date"),
        _("Open System Settings › General › Software Update and install the updates offered."),
    ),
    (
        _("Turn on FileVault"),
        _("Open System Settings › Privacy & Security › FileVault and turn it on, or run the policy in Self Service."),
    ),
    (
        _("Use a password that meets your organisation's rules"),
        _("Change your login password in System Settings › Users & Groups if you are asked to."),
    ),
    (
        _("Let your Mac check in"),
        _("Keep your Mac switched on and connected to the internet so it can report its state to IT."),
    ),
]


def remediation_items(tenant_id):
    """(requirement, how to meet it) pairs for the tenant's enabled policy rules.

    From the tenant's enabled compliance policies (merged into the strictest requirement per rule
    by ``compliance.evaluation.Requirements``) in the catalogue's order; a generic list when the
    tenant has none. Cached like the tenant (a policy save clears it), so the page costs no query.
    """
    key = "landing:remediation:v1:%d:%s" % (tenant_id, translation.get_language())
    items = cache.get(key)
    if items is None:
        items = tuple(_policy_remediation(tenant_id)) or tuple((str(a), str(b)) for a, b in GENERIC_REMEDIATION)
        cache.set(key, items, settings.LANDING_TENANT_CACHE_SECONDS)
    return items


def forget_remediation(tenant_id):
    for language, _name in settings.LANGUAGES:
        cache.delete("landing:remediation:v1:%d:%s" % (tenant_id, language))


# For each catalogue code (compliance/rules.py): the words for the person at the Mac, as
# (requirement, how), formatted with the merged requirement's value. The catalogue's own remedies
# are written for Jamf Pro admins, not for end users.
_UPDATE = _("Open System Settings › General › Software Update and install every update offered.")
_CHANGE_PASSWORD = _("Change your login password in System Settings › Users & Groups.")
_END_USER_TEXT = {
    "os_version_too_old": (_("Run macOS %(value)s or later"), _UPDATE),
    "os_version_too_new": (
        _("Run macOS %(value)s or earlier"),
        _("Do not install a newer macOS until IT approves it. If your Mac already runs one, contact IT support."),
    ),
    "os_build_too_old": (_("Install the latest macOS security updates (build %(value)s or later)"), _UPDATE),
    "os_build_too_new": (
        _("Run macOS build %(value)s or earlier"),
        _("Do not install updates IT has not approved yet. If you already did, contact IT support."),
    ),
    "filevault_off": (
        _("Turn on FileVault disk encryption"),
        _("Open System Settings › Privacy & Security › FileVault and click Turn On. Keep the Mac plugged in "
          "while it encrypts."),
    ),
    "sip_off": (
        _("Keep System Integrity Protection turned on"),
        _("It is on unless someone turned it off. Contact IT support: turning it back on needs macOS Recovery."),
    ),
    "gatekeeper_off:1": (
        _("Allow apps only from the App Store and identified developers"),
        _("Open System Settings › Privacy & Security and under Security choose App Store and identified developers."),
    ),
    "gatekeeper_off:2": (
        _("Allow apps from the App Store only"),
        _("Open System Settings › Privacy & Security and under Security choose App Store."),
    ),
    "auto_login_enabled": (
        _("Turn off automatic login"),
        _("Open System Settings › Users & Groups and set “Automatically log in as” to Off."),
    ),
    "inventory_too_old": (
        ngettext_lazy(
            "Let your Mac report to IT at least every day", "Let your Mac report to IT at least every %(value)d days",
            "value",
        ),
        _("Keep your Mac switched on and online. To report at once, open Self Service and run Update Inventory if "
          "your organisation offers it."),
    ),
    "password_min_length": (
        ngettext_lazy(
            "Use a login password of at least %(value)d character",
            "Use a login password of at least %(value)d characters",
            "value",
        ),
        _CHANGE_PASSWORD,
    ),
    "password_type:1": (_("Use a login password"), _CHANGE_PASSWORD),
    "password_type:2": (_("Use a login password with both letters and numbers"), _CHANGE_PASSWORD),
    "password_character_sets": (
        ngettext_lazy(
            "Include at least %(value)d symbol, such as ! # or %%, in your login password",
            "Include at least %(value)d symbols, such as ! # or %%, in your login password",
            "value",
        ),
        _CHANGE_PASSWORD,
    ),
    "password_expiration": (
        ngettext_lazy(
            "Change your login password at least every day",
            "Change your login password at least every %(value)d days",
            "value",
        ),
        _CHANGE_PASSWORD,
    ),
    "password_history": (
        ngettext_lazy(
            "Do not reuse your last password", "Do not reuse any of your last %(value)d passwords", "value"
        ),
        _CHANGE_PASSWORD,
    ),
    "screensaver_idle": (
        ngettext_lazy(
            "Lock the screen after at most %(value)d minute of inactivity",
            "Lock the screen after at most %(value)d minutes of inactivity",
            "value",
        ),
        _("Open System Settings › Lock Screen, start the screen saver within that time and require your password "
          "right after it starts."),
    ),
}
# The requirement each code reads (a code applies when the merged requirement is set).
_REQUIREMENT_OF = {
    "os_version_too_old": "min_os_version", "os_version_too_new": "max_os_version",
    "os_build_too_old": "min_os_build", "os_build_too_new": "max_os_build",
    "filevault_off": "filevault", "sip_off": "sip", "gatekeeper_off": "gatekeeper",
    "auto_login_enabled": "auto_login_disabled", "inventory_too_old": "max_inventory_age_days",
    "password_min_length": "password_min_length", "password_type": "password_type",
    "password_character_sets": "password_min_character_sets", "password_expiration": "password_expiration_days",
    "password_history": "password_history", "screensaver_idle": "screensaver_minutes",
}  # fmt: skip


def policy_remediation(requirements, codes):
    """End-user (requirement, how) pairs for merged ``requirements``, in the order of ``codes``.

    A merged requirement is None when no enabled policy sets it, else a tuple whose first item is
    the value (a rank for Gatekeeper and password type, a parsed version for OS rules, whose
    text is second) or, for the on/off rules, the name of the policy that asks for it.
    """
    items = []
    for code in codes:
        attr = _REQUIREMENT_OF.get(code)
        required = getattr(requirements, attr, None) if attr else None
        if required is None:
            continue
        if code in ("gatekeeper_off", "password_type"):
            requirement, how = _END_USER_TEXT["%s:%d" % (code, 2 if required[0] >= 2 else 1)]
        else:
            requirement, how = _END_USER_TEXT[code]
        if isinstance(required, tuple):
            value = required[1] if code.startswith("os_") else required[0]
            requirement = requirement % {"value": value}
        items.append((str(requirement), str(how)))
    return items


def _policy_remediation(tenant_id):
    """The tenant's enabled policy rules as end-user steps; [] without policies (or the compliance app)."""
    try:
        from compliance.evaluation import Requirements
        from compliance.models import CompliancePolicy
        from devices.rules import CODES
    except ImportError:
        return []
    requirements = Requirements.from_policies(CompliancePolicy.objects.filter(tenant_id=tenant_id, enabled=True))
    return policy_remediation(requirements, CODES)


def _connect_policy_signals():
    try:
        from compliance.models import CompliancePolicy
    except ImportError:
        return

    def policy_changed(sender, instance, **kwargs):
        forget_remediation(instance.tenant_id)

    post_save.connect(policy_changed, sender=CompliancePolicy, weak=False, dispatch_uid="landing_policy_saved")
    post_delete.connect(policy_changed, sender=CompliancePolicy, weak=False, dispatch_uid="landing_policy_deleted")


_connect_policy_signals()
