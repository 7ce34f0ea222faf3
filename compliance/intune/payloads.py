"""Build the entities the Intune partner service receives (design section 6). Pure functions.

EntityType 1 is the device inventory record for one (device, user) pair; in partner-compliance
mode an EntityType 4 record carries the portal's compliance verdict. In inventory mode (legacy)
the EntityType 1 record also carries every attribute of the seed's appendix, formatted as Jamf
Pro sent them (TRUE / FALSE, NotEnforced, "App Store and identified developers", RAM and speeds
as strings), and Intune evaluates them itself.

Every record is well formed: ``Os`` is always "macOS"; ``DeviceName`` falls back to the serial number
(then the UDID) in both modes; ``LastCheckInTime`` falls back to Jamf's report date (the last inventory,
also a contact with Jamf Pro). A Mac for which Jamf Pro gave neither date, or no macOS version, is held
back (``hold_reason``): it is not reported, and the computer's page says why (docs/scaling.md).
"""

import datetime
import hashlib
import json

ENTITY_DEVICE = 1
ENTITY_COMPLIANCE = 4
NOT_ENFORCED = "NotEnforced"

GATEKEEPER_TEXT = {
    "APP_STORE": "App Store only",
    "APP_STORE_AND_IDENTIFIED_DEVELOPERS": "App Store and identified developers",
}


OS_NAME = "macOS"  # Intune's platform name for every Mac, whatever Jamf calls the OS ("Mac OS X" on old ones)


def isoformat(value):
    """Intune's timestamp format for entity fields: UTC with a Z, whole seconds (text already in that format is kept
    as is)."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def upload_time_text(value):
    """A message's UploadTime: UTC with a Z and always six decimals, so resends and splits stay ordered."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def device_name(computer):
    """Jamf's computer name, else the serial number, else the UDID: Intune's DeviceName is never empty."""
    return computer.name or computer.serial_number or computer.udid


def last_check_in(computer):
    """LastCheckInTime: the recurring check-in, else Jamf's report date (an inventory is a contact too)."""
    return computer.last_check_in or computer.last_inventory_update


# Why a registered Mac is held back from Intune (not reported), keyed by code. Shown on the computer's page and
# counted in the deliver run; the Mac is reported as soon as Jamf Pro supplies the missing value.
HOLD_REASONS = {
    "no_contact": "Jamf Pro has reported neither a check-in nor an inventory for this Mac, so Intune's "
                  "LastCheckInTime would be empty.",
    "no_os_version": "Jamf Pro has not reported this Mac's macOS version, so Intune's OsVersion would be empty.",
}


def hold_reason(computer):
    """The code of HOLD_REASONS that keeps this Mac from being reported, or None when it can be reported."""
    if last_check_in(computer) is None:
        return "no_contact"
    if not (computer.os_version or "").strip():
        return "no_os_version"
    return None


def _bool_text(value):
    return "TRUE" if value else "FALSE"


def _enforced(value):
    return NOT_ENFORCED if value is None else str(value)


def _ghz(mhz):
    return "%.2f GHz" % (mhz / 1000) if mhz else "N/A"


def _cache(kilobytes):
    if not kilobytes:
        return "N/A"
    return "%dMB" % (kilobytes // 1024) if kilobytes % 1024 == 0 else "%dKB" % kilobytes


def _sip_text(computer):
    if computer.sip == "NOT_AVAILABLE":
        return "NOTAPPLICABLE"  # before macOS 10.11 (seed appendix)
    return "TRUE" if computer.sip == "ENABLED" else "FALSE"  # FALSE also when not yet collected


def _ad_text(status):
    status = (status or "").strip()
    return "FALSE" if not status or status.lower() in ("not bound", "false") else status


def legacy_attributes(computer, user):
    """The appendix attributes, keyed as the legacy inventory upload named them."""
    return {
        "Encrypted": _bool_text(computer.filevault_state == "ENCRYPTED"),
        "Gatekeeper": GATEKEEPER_TEXT.get(computer.gatekeeper, "FALSE"),
        "SIP": _sip_text(computer),
        "PreventAutoLogin": _bool_text(computer.auto_login_disabled),
        "PasswordExpirationDays": _enforced(user.password_max_age_days),
        "PasswordType": user.password_type or NOT_ENFORCED,
        "MinimumPasswordCharSets": _enforced(user.password_min_complex_characters),
        "PasscodeLength": _enforced(user.password_min_length),
        "PasswordHistoryLength": _enforced(user.password_history_depth),
        "CPUArchitecture": computer.architecture or "",
        "RAMOpenSlots": "" if computer.open_ram_slots is None else str(computer.open_ram_slots),
        "BatteryCapacity": (
            "" if computer.battery_capacity_percent is None else "%d%%" % computer.battery_capacity_percent
        ),
        "BootROM": computer.boot_rom or "",
        "BusSpeed": _ghz(computer.bus_speed_mhz),
        "CacheSize": _cache(computer.cache_size_kb),
        "DeviceName": device_name(computer),
        "ADDomainJoined": _ad_text(computer.ad_status),
        "JamfId": str(computer.jamf_id),
        "MACAddress": computer.mac_address or "",
        "Vendor": computer.make or "",
        "Model": computer.model or "",
        "ModelId": computer.model_identifier or "",
        "NICSpeed": computer.nic_speed or "",
        "CPUCoreCount": "" if computer.core_count is None else str(computer.core_count),
        "CPUCount": "" if computer.processor_count is None else str(computer.processor_count),
        "Os": OS_NAME,
        "OsVersion": (computer.os_version or "").strip(),
        "Platform": computer.platform or "",
        "CPUSpeed": _ghz(computer.processor_speed_mhz),
        "CPUType": computer.processor_type or "",
        "MACAddress2": computer.alt_mac_address or "",
        "SerialNumber": computer.serial_number or "",
        "SMCVersion": computer.smc_version or "",
        "RAM": "%.1f GB" % (computer.total_ram_mb / 1024) if computer.total_ram_mb else "",
        "UDID": computer.udid or "",
        "UPN": user.email or computer.user_email or "",
    }


def device_entity(tenant_guid, computer, user, state, updated_at, inventory_mode=False):
    """The EntityType 1 record for one (computer, user) pair."""
    entity = {
        "EntityType": ENTITY_DEVICE,
        "TenantId": str(tenant_guid),
        "DeviceId": user.entra_device_id or computer.entra_device_id,
        "DeviceName": device_name(computer),
        "UserId": user.entra_user_id,
        "DeviceManagementState": "notManaged" if state == 1 else "managed",
        "LastCheckInTime": isoformat(last_check_in(computer)),
        "LastUpdateTime": isoformat(updated_at),
        "Os": OS_NAME,
        "OsVersion": (computer.os_version or "").strip(),
        "EasIds": [],  # required by the partner service, even empty
        "State": int(state),
    }
    if inventory_mode:
        entity.update(legacy_attributes(computer, user))
    return entity


def compliance_entity(tenant_guid, computer, user, compliance_status, updated_at):
    """The EntityType 4 record: the portal's verdict in partner-compliance mode."""
    return {
        "EntityType": ENTITY_COMPLIANCE,
        "TenantId": str(tenant_guid),
        "DeviceId": user.entra_device_id or computer.entra_device_id,
        "UserId": user.entra_user_id,
        "LastUpdateTime": isoformat(updated_at),
        "complianceStatus": compliance_status,
    }


def entities_for(tenant_guid, computer, user, state, compliance_status, updated_at, inventory_mode=False):
    """Every entity one report carries, in order."""
    entities = [device_entity(tenant_guid, computer, user, state, updated_at, inventory_mode)]
    if not inventory_mode:
        entities.append(compliance_entity(tenant_guid, computer, user, compliance_status, updated_at))
    return entities


# Left out of the hash: LastUpdateTime changes with every report, and LastCheckInTime with every
# 15-minute check-in. A Mac crossing the unresponsive line changes State, which is hashed, and the
# refresh interval re-sends healthy Macs well inside the validity period, so neither is needed to
# decide whether to report, and hashing them would turn every check-in into a report.
VOLATILE_KEYS = frozenset({"LastUpdateTime", "LastCheckInTime"})


def payload_hash(entities):
    """A digest of what matters in a report, ignoring the timestamps that change on their own."""
    stable = [{k: v for k, v in entity.items() if k not in VOLATILE_KEYS} for entity in entities]
    raw = json.dumps(stable, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def upload_body(tenant_guid, entities, upload_time):
    """The DataUploadMessages PUT body; the Intune client sends exactly this.

    Intune partner API: Content is a JSON *string* of the list of entities. ``entities`` may be that string
    already (the delivery joins the stored payloads without decoding them).
    """
    return {
        "TenantId": str(tenant_guid),
        "UploadTime": upload_time_text(upload_time),
        "Content": entities if isinstance(entities, str) else json.dumps(entities, separators=(",", ":"), default=str),
    }


# -- The partner-mode report as text, without building the entities --------------------------------------------------
#
# The outbox makes one report per pair, 100,000 of them on a tenant's first pass: building the two entity dicts, then
# json.dumps of them twice (the payload, and the sorted stable form for the hash) was most of its time. The two texts
# are the same every time but for a dozen values, so they are filled into templates made once, here, from the entity
# builders above (so the templates follow any change to them), each value escaped by the json module's own C escaper.
# tests/compliance/test_payloads.py holds the result equal to ``json.dumps(entities_for(...))`` and ``payload_hash``.

_SLOTS = ("TenantId", "DeviceId", "DeviceName", "UserId", "DeviceManagementState", "LastCheckInTime",
          "LastUpdateTime", "OsVersion", "State", "complianceStatus")


def _sentinel(name):
    return "@@%s@@" % name


def _templates():
    class Fake:
        pass

    computer, user = Fake(), Fake()
    computer.name, computer.entra_device_id = _sentinel("DeviceName"), ""
    computer.last_check_in, computer.os_version = _sentinel("LastCheckInTime"), _sentinel("OsVersion")
    user.entra_device_id, user.entra_user_id = _sentinel("DeviceId"), _sentinel("UserId")
    entities = entities_for(_sentinel("TenantId"), computer, user, 0, _sentinel("complianceStatus"),
                            _sentinel("LastUpdateTime"))
    entities[0]["State"], entities[0]["DeviceManagementState"] = _sentinel("State"), _sentinel("DeviceManagementState")
    stable = [{k: v for k, v in entity.items() if k not in VOLATILE_KEYS} for entity in entities]

    def template(text):
        text = text.replace("%", "%%")
        for name in _SLOTS:
            text = text.replace(json.dumps(_sentinel(name)), "%%(%s)s" % name)
        if "@@" in text:
            raise AssertionError("an entity value is not a template slot: %s" % text)
        return text

    return template(json.dumps(entities)), template(json.dumps(stable, sort_keys=True, separators=(",", ":")))


_PAYLOAD_TEMPLATE, _HASH_TEMPLATE = _templates()
_escape = json.encoder.encode_basestring_ascii  # what json.dumps does with a str (ensure_ascii)


def _json_value(value):
    return _escape(value) if isinstance(value, str) else json.dumps(value)


def partner_report(tenant_guid_json, computer, user, state, compliance_status, updated_at_json):
    """``(json.dumps(entities), payload_hash(entities))`` of a partner-mode report, ``entities`` being
    ``entities_for(tenant_guid, computer, user, state, compliance_status, updated_at)``; the tenant GUID and
    LastUpdateTime come as their JSON text (``json.dumps(str(tenant_guid))``, ``json.dumps(isoformat(updated_at))``),
    made once per run."""
    escape = _escape
    device_id = user.entra_device_id or computer.entra_device_id
    name = computer.name or computer.serial_number or computer.udid  # device_name()
    checked_in = isoformat(computer.last_check_in or computer.last_inventory_update)  # last_check_in()
    user_id = user.entra_user_id
    values = {
        "TenantId": tenant_guid_json,
        "DeviceId": escape(device_id) if device_id.__class__ is str else _json_value(device_id),
        "DeviceName": escape(name) if name.__class__ is str else _json_value(name),
        "UserId": escape(user_id) if user_id.__class__ is str else _json_value(user_id),
        "DeviceManagementState": '"notManaged"' if state == 1 else '"managed"',
        "LastCheckInTime": escape(checked_in) if checked_in.__class__ is str else _json_value(checked_in),
        "LastUpdateTime": updated_at_json,
        "OsVersion": escape((computer.os_version or "").strip()),
        "State": int(state),
        "complianceStatus": _json_value(compliance_status),
    }
    return _PAYLOAD_TEMPLATE % values, hashlib.sha256((_HASH_TEMPLATE % values).encode()).hexdigest()
