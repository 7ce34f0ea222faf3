"""Map one Jamf Pro ``computers-inventory`` record to Computer and UserAccount values.

A pure function: no database, no settings. It follows the attribute table in
``shared/seed-summary.md`` (Jamf Pro API field for each appendix attribute) and accepts the v3
shape and the v4 one, where ``general.lastContact`` replaces ``general.lastContactTime``.

Only sections present in the record produce values, so a partial record (a webhook summary, a
pull with fewer sections) never blanks what another source stored. A record that cannot be
trusted raises :class:`MappingError` naming the field and the problem.
"""

import datetime
import functools
import hashlib
import json
from dataclasses import dataclass, field

from django.utils.dateparse import parse_datetime

COMPANY_PORTAL_BUNDLE_ID = "com.microsoft.CompanyPortalMac"
COMPANY_PORTAL_APP_NAME = "Company Portal.app"
INT32_MAX = 2**31 - 1

# DISK_ENCRYPTION bootPartitionEncryptionDetails.partitionFileVault2State, normalised.
FILEVAULT_PARTITION_STATES = {
    "ENCRYPTED": "ENCRYPTED",
    "ENCRYPTING": "ENCRYPTING",
    "ENCRYPTING_PAUSED": "ENCRYPTING",
    "OPTIMIZING": "ENCRYPTING",
    "RESTART_NEEDED": "ENCRYPTING",
    "DECRYPTING": "DECRYPTING",
    "DECRYPTING_PAUSED": "DECRYPTING",
    "DECRYPTED": "NOT_ENCRYPTED",
    "UNENCRYPTED": "NOT_ENCRYPTED",
    "NOT_ENCRYPTED": "NOT_ENCRYPTED",
    "INELIGIBLE": "NOT_ENCRYPTED",
    "UNKNOWN": "UNKNOWN",
}
# OPERATING_SYSTEM fileVault2Status, the fallback when the partition detail is absent.
FILEVAULT_OS_STATES = {
    "ALL_ENCRYPTED": "ENCRYPTED",
    "BOOT_ENCRYPTED": "ENCRYPTED",
    "SOME_ENCRYPTED": "UNKNOWN",
    "NOT_ENCRYPTED": "NOT_ENCRYPTED",
    "NOT_APPLICABLE": "UNKNOWN",
}
GATEKEEPER_STATES = {"APP_STORE", "APP_STORE_AND_IDENTIFIED_DEVELOPERS", "DISABLED", "NOT_COLLECTED"}
SIP_STATES = {"ENABLED", "DISABLED", "NOT_COLLECTED", "NOT_AVAILABLE"}
ENTRA_STATES = {"ACTIVATED", "DEACTIVATED", "UNRESPONSIVE", "UNKNOWN"}

# Fields read with _Section.read: (Computer or user field, Jamf key, kind, max length), in the order they are checked.
TEXT, INTEGER = "text", "integer"
HARDWARE_FIELDS = (
    ("serial_number", "serialNumber", TEXT, 64),
    ("architecture", "processorArchitecture", TEXT, 32),
    ("open_ram_slots", "openRamSlots", INTEGER, None),
    ("battery_capacity_percent", "batteryCapacityPercent", INTEGER, None),
    ("boot_rom", "bootRom", TEXT, 64),
    ("bus_speed_mhz", "busSpeedMhz", INTEGER, None),
    ("cache_size_kb", "cacheSizeKilobytes", INTEGER, None),
    ("mac_address", "macAddress", TEXT, 32),
    ("alt_mac_address", "altMacAddress", TEXT, 32),
    ("make", "make", TEXT, 64),
    ("model", "model", TEXT, 255),
    ("model_identifier", "modelIdentifier", TEXT, 64),
    ("nic_speed", "nicSpeed", TEXT, 32),
    ("core_count", "coreCount", INTEGER, None),
    ("processor_count", "processorCount", INTEGER, None),
    ("processor_speed_mhz", "processorSpeedMhz", INTEGER, None),
    ("processor_type", "processorType", TEXT, 128),
    ("smc_version", "smcVersion", TEXT, 64),
    ("total_ram_mb", "totalRamMegabytes", INTEGER, None),
)
OS_FIELDS = (
    ("os_name", "name", TEXT, 64),
    ("os_version", "version", TEXT, 64),
    ("os_build", "build", TEXT, 64),
    ("ad_status", "activeDirectoryStatus", TEXT, 255),
    ("filevault2_status", "fileVault2Status", TEXT, 16),
)
USER_NAME_FIELDS = (("full_name", "fullName", TEXT, 255), ("uid", "uid", TEXT, 32),
                    ("account_type", "userAccountType", TEXT, 16))
USER_ENTRA_FIELDS = (("entra_user_id", "userAzureActiveDirectoryId", TEXT, 64),
                     ("entra_device_id", "computerAzureActiveDirectoryId", TEXT, 64))
USER_PASSWORD_FIELDS = (
    ("password_history_depth", "passwordHistoryDepth", INTEGER, None),
    ("password_min_complex_characters", "passwordMinComplexCharacters", INTEGER, None),
    ("password_max_age_days", "passwordMaxAge", INTEGER, None),
)

class MappingError(ValueError):
    """A record that cannot be imported; ``field`` names the Jamf field at fault."""

    def __init__(self, field, problem):
        self.field = field
        self.problem = problem
        super().__init__("%s: %s" % (field, problem) if field else problem)

    def __reduce__(self):  # picklable (the import's reader process sends refusals back)
        return type(self), (self.field, self.problem)


@dataclass
class MappedComputer:
    jamf_id: str
    udid: str
    report_date: datetime.datetime | None
    computer: dict
    users: list | None = None  # None: the record had no LOCAL_USER_ACCOUNTS section
    sections: frozenset = field(default_factory=frozenset)

    @functools.cached_property
    def source_hash(self):
        """A stable digest of everything mapped, to tell an unchanged record from a changed one."""
        doc = {"c": self.computer, "u": self.users}
        raw = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


class _Section:
    """Typed access to one section of a record, raising MappingError with the full field path."""

    def __init__(self, data, path):
        if not isinstance(data, dict):
            raise MappingError(path, "expected an object, got %s" % _type_name(data))
        self.data = data
        self.path = path

    def _where(self, key):
        return "%s.%s" % (self.path, key) if self.path else key

    def raw(self, key):
        return self.data.get(key)

    def text(self, key, max_length=None):
        value = self.data.get(key)
        if value is None:
            return ""
        if isinstance(value, (bool, dict, list)):
            raise MappingError(self._where(key), "expected a string, got %s" % _type_name(value))
        value = str(value).strip()
        return value[:max_length] if max_length else value

    def integer(self, key):
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise MappingError(self._where(key), "expected an integer, got a boolean")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise MappingError(self._where(key), "expected an integer, got %r" % value[:40]) from None
        if not isinstance(value, int):
            raise MappingError(self._where(key), "expected an integer, got %s" % _type_name(value))
        if abs(value) > INT32_MAX:
            raise MappingError(self._where(key), "%d is out of range" % value)
        return value

    def boolean(self, key):
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise MappingError(self._where(key), "expected true or false, got %r" % (value,))

    def timestamp(self, key):
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise MappingError(self._where(key), "expected an ISO 8601 date-time, got %s" % _type_name(value))
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise MappingError(self._where(key), "%r is not an ISO 8601 date-time" % value[:40])
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.astimezone(datetime.UTC)

    def enum(self, key, allowed):
        value = self.text(key)
        if not value:
            return None
        value = value.upper()
        return value if value in allowed else None

    def read(self, spec, out):
        """Read several fields into ``out``: ``spec`` is ((name, key, TEXT or INTEGER, max length), ...).

        The same values and errors as :meth:`text` and :meth:`integer` field by field, in ``spec``'s
        order; the common cases (a string, an int in range) skip the method calls, which were most of
        the mapping's time.
        """
        data = self.data
        for name, key, kind, limit in spec:
            value = data.get(key)
            if kind is TEXT:
                if value.__class__ is str:
                    value = value.strip()
                    out[name] = value[:limit] if limit else value
                else:
                    out[name] = self.text(key, limit)
            elif value.__class__ is int and -INT32_MAX <= value <= INT32_MAX:
                out[name] = value
            else:
                out[name] = self.integer(key)
        return out

    def section(self, key):
        value = self.data.get(key)
        if value is None:
            return None
        return _Section(value, self._where(key))


def _type_name(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def map_computer_record(record):
    """Map one computers-inventory record; raises MappingError for a record that must be rejected."""
    root = _Section(record, "")
    jamf_id = root.text("id", 64)
    if not jamf_id:
        raise MappingError("id", "missing: every record needs its Jamf Pro ID")
    udid = root.text("udid", 64)
    if not udid:
        raise MappingError("udid", "missing: every record needs the computer's UDID")

    values = {}
    sections = set()
    report_date = None

    general = root.section("general")
    if general is not None:
        sections.add("GENERAL")
        report_date = general.timestamp("reportDate")
        # v4 renames lastContactTime to lastContact.
        last_contact = general.timestamp("lastContact") if "lastContact" in general.data else None
        if last_contact is None:
            last_contact = general.timestamp("lastContactTime")
        values.update(
            name=general.text("name", 255),
            platform=general.text("platform", 32),
            last_check_in=last_contact,
            last_inventory_update=report_date,
            last_enrolled=general.timestamp("lastEnrolledDate"),
        )
        remote = general.section("remoteManagement")
        if remote is not None and remote.boolean("managed") is not None:
            values["managed"] = remote.boolean("managed")

    hardware = root.section("hardware")
    if hardware is not None:
        sections.add("HARDWARE")
        hardware.read(HARDWARE_FIELDS, values)

    os_section = root.section("operatingSystem")
    os_filevault = None
    if os_section is not None:
        sections.add("OPERATING_SYSTEM")
        os_section.read(OS_FIELDS, values)
        values["filevault2_status"] = values["filevault2_status"].upper()
        os_filevault = FILEVAULT_OS_STATES.get(values["filevault2_status"])

    disk = root.section("diskEncryption")
    if disk is not None:
        sections.add("DISK_ENCRYPTION")
        boot = disk.section("bootPartitionEncryptionDetails")
        state = boot.text("partitionFileVault2State").upper() if boot is not None else ""
        values["filevault_state"] = FILEVAULT_PARTITION_STATES.get(state, "UNKNOWN" if state else os_filevault)
    elif os_filevault is not None:
        values["filevault_state"] = os_filevault

    security = root.section("security")
    if security is not None:
        sections.add("SECURITY")
        values.update(
            gatekeeper=security.enum("gatekeeperStatus", GATEKEEPER_STATES),
            sip=security.enum("sipStatus", SIP_STATES),
            auto_login_disabled=security.boolean("autoLoginDisabled"),
        )

    location = root.section("userAndLocation")
    location_username = ""
    location_email = ""
    if location is not None:
        sections.add("USER_AND_LOCATION")
        location_username = location.text("username", 255)
        location_email = location.text("email", 255)
        values.update(user_email=location_email, username=location_username)

    applications = record.get("applications")
    if applications is not None:
        if not isinstance(applications, list):
            raise MappingError("applications", "expected a list, got %s" % _type_name(applications))
        sections.add("APPLICATIONS")
        values["company_portal_version"] = _company_portal_version(applications)

    users = None
    accounts = record.get("localUserAccounts")
    if accounts is not None:
        if not isinstance(accounts, list):
            raise MappingError("localUserAccounts", "expected a list, got %s" % _type_name(accounts))
        sections.add("LOCAL_USER_ACCOUNTS")
        users = []
        seen = set()
        for index, account in enumerate(accounts):
            user = _map_user(_Section(account, "localUserAccounts[%d]" % index), location_username, location_email)
            if user is None or user["username"] in seen:
                continue
            seen.add(user["username"])
            users.append(user)
        device_ids = [u["entra_device_id"] for u in users if u["entra_device_id"]]
        values["entra_device_id"] = device_ids[0] if device_ids else ""

    return MappedComputer(
        jamf_id=jamf_id, udid=udid, report_date=report_date, computer=values, users=users,
        sections=frozenset(sections),
    )


def _company_portal_version(applications):
    """The Company Portal version, "" when installed without a version, None when not installed."""
    for index, app in enumerate(applications):
        if not isinstance(app, dict):
            raise MappingError("applications[%d]" % index, "expected an object, got %s" % _type_name(app))
        if app.get("bundleId") == COMPANY_PORTAL_BUNDLE_ID or app.get("name") == COMPANY_PORTAL_APP_NAME:
            version = app.get("version")
            return str(version).strip()[:64] if version is not None else ""
    return None


def _map_user(account, location_username, location_email):
    username = account.text("username", 255)
    if not username:
        return None
    require_alnum = account.boolean("passwordRequireAlphanumeric")
    user = account.read(USER_NAME_FIELDS, {"username": username})
    user["account_type"] = user["account_type"].upper()
    user["is_admin"] = account.boolean("admin")
    user["email"] = location_email if location_email and username == location_username else ""
    account.read(USER_ENTRA_FIELDS, user)
    user["entra_state"] = account.enum("azureActiveDirectoryId", ENTRA_STATES)
    account.read(USER_PASSWORD_FIELDS, user)
    user["password_type"] = None if require_alnum is None else ("AlphaNumeric" if require_alnum else "Simple")
    user["password_min_length"] = account.integer("passwordMinLength")
    # No inventory field carries the screensaver delay (seed appendix): NotEnforced unless known.
    user["screensaver_idle_minutes"] = None
    return user
