import copy
import datetime

import pytest

from devices.jamf.mapping import MappingError, map_computer_record

UTC = datetime.UTC

V3_RECORD = {
    "id": "140",
    "udid": "0012166F-5DB5-41F7-B832-D8763D641274",
    "general": {
        "name": "User's MacBook Pro",
        "platform": "Mac",
        "reportDate": "2024-06-07T13:00:00.123Z",
        "lastContactTime": "2024-06-07T13:32:42Z",
        "lastEnrolledDate": "2023-01-02T03:04:05Z",
        "remoteManagement": {"managed": True},
    },
    "hardware": {
        "make": "Apple",
        "model": "15-inch Retina MacBook Pro (Mid 2015)",
        "modelIdentifier": "MacBook8,1",
        "serialNumber": "J01A234MFJA5",
        "processorSpeedMhz": 1100,
        "processorCount": 1,
        "coreCount": 2,
        "processorType": "Intel Core M",
        "processorArchitecture": "x86_64",
        "busSpeedMhz": 1100,
        "cacheSizeKilobytes": 4096,
        "macAddress": "C4:B3:01:C5:F5:61",
        "altMacAddress": "A1:23:4F:56:78:9J",
        "totalRamMegabytes": 8192,
        "openRamSlots": 0,
        "batteryCapacityPercent": 91,
        "smcVersion": "2.25f87",
        "nicSpeed": "N/A",
        "bootRom": "MB81.0164.B18",
    },
    "operatingSystem": {
        "name": "macOS",
        "version": "10.12.4",
        "build": "16E195",
        "activeDirectoryStatus": "ad.jamf.com",
        "fileVault2Status": "BOOT_ENCRYPTED",
    },
    "security": {"sipStatus": "ENABLED", "gatekeeperStatus": "APP_STORE", "autoLoginDisabled": True},
    "diskEncryption": {"bootPartitionEncryptionDetails": {"partitionFileVault2State": "ENCRYPTED"}},
    "userAndLocation": {"username": "jdoe", "email": "user@mycompany.com"},
    "localUserAccounts": [
        {
            "username": "jdoe",
            "fullName": "Jane Doe",
            "uid": "501",
            "admin": False,
            "userAccountType": "LOCAL",
            "passwordMinLength": 10,
            "passwordMaxAge": 30,
            "passwordMinComplexCharacters": 2,
            "passwordHistoryDepth": 5,
            "passwordRequireAlphanumeric": True,
            "computerAzureActiveDirectoryId": "aaaa166f-5db5-41f7-b832-d8763d641274",
            "userAzureActiveDirectoryId": "bbbb166f-5db5-41f7-b832-d8763d641274",
            "azureActiveDirectoryId": "ACTIVATED",
        },
        {"username": "admin", "passwordRequireAlphanumeric": False, "azureActiveDirectoryId": "UNKNOWN"},
    ],
    "applications": [
        {"name": "Safari.app", "bundleId": "com.apple.Safari", "version": "17.0"},
        {"name": "Company Portal.app", "bundleId": "com.microsoft.CompanyPortalMac", "version": "5.2404.0"},
    ],
}


def test_full_v3_record_maps_every_appendix_attribute():
    m = map_computer_record(copy.deepcopy(V3_RECORD))
    c = m.computer
    assert (m.jamf_id, m.udid) == ("140", "0012166F-5DB5-41F7-B832-D8763D641274")
    assert m.report_date == datetime.datetime(2024, 6, 7, 13, 0, 0, 123000, tzinfo=UTC)
    assert c["last_check_in"] == datetime.datetime(2024, 6, 7, 13, 32, 42, tzinfo=UTC)
    assert c["last_inventory_update"] == m.report_date
    assert c["entra_device_id"] == "aaaa166f-5db5-41f7-b832-d8763d641274"
    assert c["architecture"] == "x86_64"
    assert c["open_ram_slots"] == 0
    assert c["battery_capacity_percent"] == 91
    assert c["boot_rom"] == "MB81.0164.B18"
    assert c["bus_speed_mhz"] == 1100
    assert c["cache_size_kb"] == 4096
    assert c["name"] == "User's MacBook Pro"
    assert c["ad_status"] == "ad.jamf.com"
    assert c["mac_address"] == "C4:B3:01:C5:F5:61"
    assert c["make"] == "Apple"
    assert c["model"] == "15-inch Retina MacBook Pro (Mid 2015)"
    assert c["model_identifier"] == "MacBook8,1"
    assert c["nic_speed"] == "N/A"
    assert c["core_count"] == 2
    assert c["processor_count"] == 1
    assert c["os_name"] == "macOS"
    assert c["os_version"] == "10.12.4"
    assert c["os_build"] == "16E195"
    assert c["platform"] == "Mac"
    assert c["processor_speed_mhz"] == 1100
    assert c["processor_type"] == "Intel Core M"
    assert c["alt_mac_address"] == "A1:23:4F:56:78:9J"
    assert c["serial_number"] == "J01A234MFJA5"
    assert c["smc_version"] == "2.25f87"
    assert c["total_ram_mb"] == 8192
    assert c["user_email"] == "user@mycompany.com"
    assert c["filevault_state"] == "ENCRYPTED"
    assert c["gatekeeper"] == "APP_STORE"
    assert c["sip"] == "ENABLED"
    assert c["auto_login_disabled"] is True
    assert c["company_portal_version"] == "5.2404.0"
    assert c["managed"] is True

    jdoe, admin = m.users
    assert jdoe["username"] == "jdoe"
    assert jdoe["email"] == "user@mycompany.com"
    assert jdoe["entra_user_id"] == "bbbb166f-5db5-41f7-b832-d8763d641274"
    assert jdoe["entra_device_id"] == "aaaa166f-5db5-41f7-b832-d8763d641274"
    assert jdoe["entra_state"] == "ACTIVATED"
    assert jdoe["password_history_depth"] == 5
    assert jdoe["password_min_complex_characters"] == 2
    assert jdoe["password_max_age_days"] == 30
    assert jdoe["password_type"] == "AlphaNumeric"
    assert jdoe["password_min_length"] == 10
    assert jdoe["screensaver_idle_minutes"] is None  # no inventory field: NotEnforced
    # NotEnforced values stay None; the second account has no Entra registration.
    assert admin["password_min_length"] is None
    assert admin["password_history_depth"] is None
    assert admin["password_type"] == "Simple"
    assert admin["entra_state"] == "UNKNOWN"
    assert admin["email"] == ""


def test_v4_last_contact_replaces_last_contact_time():
    record = copy.deepcopy(V3_RECORD)
    del record["general"]["lastContactTime"]
    record["general"]["lastContact"] = "2024-06-08T01:02:03Z"
    m = map_computer_record(record)
    assert m.computer["last_check_in"] == datetime.datetime(2024, 6, 8, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("partition", "os_status", "expected"),
    [
        ("ENCRYPTED", None, "ENCRYPTED"),
        ("ENCRYPTING", None, "ENCRYPTING"),
        ("UNENCRYPTED", None, "NOT_ENCRYPTED"),
        ("DECRYPTED", None, "NOT_ENCRYPTED"),
        ("SOMETHING_NEW", None, "UNKNOWN"),
        (None, "ALL_ENCRYPTED", "ENCRYPTED"),
        (None, "NOT_ENCRYPTED", "NOT_ENCRYPTED"),
        (None, "NOT_APPLICABLE", "UNKNOWN"),
    ],
)
def test_filevault_states_are_normalised(partition, os_status, expected):
    record = {"id": "1", "udid": "U1", "operatingSystem": {"fileVault2Status": os_status}}
    if partition:
        record["diskEncryption"] = {"bootPartitionEncryptionDetails": {"partitionFileVault2State": partition}}
    assert map_computer_record(record).computer["filevault_state"] == expected


def test_unknown_enum_values_become_unknown_not_errors():
    record = {"id": "1", "udid": "U1", "security": {"sipStatus": "weird", "gatekeeperStatus": "new_mode"},
              "localUserAccounts": [{"username": "a", "azureActiveDirectoryId": "SOMETHING"}]}
    m = map_computer_record(record)
    assert m.computer["sip"] is None
    assert m.computer["gatekeeper"] is None
    assert m.users[0]["entra_state"] is None


def test_missing_sections_produce_no_values_for_them():
    m = map_computer_record({"id": "7", "udid": "U7"})
    assert m.computer == {}
    assert m.users is None
    assert m.report_date is None
    m = map_computer_record({"id": "7", "udid": "U7", "hardware": {}})
    assert m.computer["serial_number"] == ""
    assert m.computer["core_count"] is None
    assert "os_version" not in m.computer


def test_company_portal_detected_by_name_and_absent():
    m = map_computer_record({"id": "1", "udid": "U", "applications": [{"name": "Company Portal.app"}]})
    assert m.computer["company_portal_version"] == ""
    m = map_computer_record({"id": "1", "udid": "U", "applications": []})
    assert m.computer["company_portal_version"] is None


@pytest.mark.parametrize(
    ("record", "field", "problem"),
    [
        ({"udid": "U"}, "id", "missing"),
        ({"id": "1"}, "udid", "missing"),
        ({"id": "1", "udid": ""}, "udid", "missing"),
        ({"id": "1", "udid": "U", "hardware": []}, "hardware", "expected an object"),
        ({"id": "1", "udid": "U", "hardware": {"coreCount": "many"}}, "hardware.coreCount", "expected an integer"),
        ({"id": "1", "udid": "U", "hardware": {"coreCount": 2**40}}, "hardware.coreCount", "out of range"),
        ({"id": "1", "udid": "U", "general": {"reportDate": "yesterday"}}, "general.reportDate", "ISO 8601"),
        ({"id": "1", "udid": "U", "security": {"autoLoginDisabled": "maybe"}}, "security.autoLoginDisabled",
         "true or false"),
        ({"id": "1", "udid": "U", "localUserAccounts": {}}, "localUserAccounts", "expected a list"),
        ({"id": "1", "udid": "U", "localUserAccounts": [3]}, "localUserAccounts[0]", "expected an object"),
        ({"id": {"x": 1}, "udid": "U"}, "id", "expected a string"),
    ],
)
def test_rejections_name_the_field_and_the_problem(record, field, problem):
    with pytest.raises(MappingError) as excinfo:
        map_computer_record(record)
    assert excinfo.value.field == field
    assert problem in str(excinfo.value)


def test_a_record_that_is_not_an_object_is_rejected():
    with pytest.raises(MappingError, match="expected an object"):
        map_computer_record(["not", "a", "record"])


def test_source_hash_is_stable_and_sensitive():
    a = map_computer_record(copy.deepcopy(V3_RECORD))
    b = map_computer_record(copy.deepcopy(V3_RECORD))
    assert a.source_hash == b.source_hash
    changed = copy.deepcopy(V3_RECORD)
    changed["security"]["sipStatus"] = "DISABLED"
    assert map_computer_record(changed).source_hash != a.source_hash
