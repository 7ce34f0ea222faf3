"""Golden-file tests for the entities sent to Intune, in both reporting modes.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/compliance/test_payloads.py``
and review the diff.
"""

import datetime
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.intune.payloads import entities_for, isoformat, partner_report, payload_hash, upload_body
from devices.models import Computer, UserAccount

GOLDEN = Path(__file__).parent / "golden"
TENANT_GUID = "0012166f-5db5-41f7-b832-d8763d641274"
NOW = datetime.datetime(2024, 6, 7, 14, 0, 0, tzinfo=datetime.UTC)


def appendix_mac():
    """The Mac of the seed's appendix table, as unsaved model instances."""
    computer = Computer(
        jamf_id="140", udid="0012166F-5DB5-41F7-B832-D8763D641274", serial_number="J01A234MFJA5",
        name="User's MacBook Pro", last_check_in=datetime.datetime(2017, 6, 7, 13, 32, 42, tzinfo=datetime.UTC),
        entra_device_id="aaaa166f-5db5-41f7-b832-d8763d641274", architecture="x86_64", open_ram_slots=0,
        battery_capacity_percent=91, boot_rom="MB81.0164.B18", bus_speed_mhz=1100, cache_size_kb=4096,
        ad_status="ad.jamf.com", mac_address="C4:B3:01:C5:F5:61", alt_mac_address="A1:23:4F:56:78:9J", make="Apple",
        model="15-inch Retina MacBook Pro (Mid 2015)", model_identifier="MacBook8,1", nic_speed="N/A", core_count=2,
        processor_count=1, os_name="macOS", os_version="10.12.4", platform="macOS", processor_speed_mhz=1100,
        processor_type="Intel Core M", smc_version="2.25f87", total_ram_mb=8192, user_email="user@mycompany.com",
        filevault_state="ENCRYPTED", gatekeeper="APP_STORE_AND_IDENTIFIED_DEVELOPERS", sip="ENABLED",
        auto_login_disabled=True,
    )
    user = UserAccount(
        username="jdoe", email="user@mycompany.com", entra_user_id="bbbb166f-5db5-41f7-b832-d8763d641274",
        entra_device_id="aaaa166f-5db5-41f7-b832-d8763d641274", password_history_depth=5,
        password_min_complex_characters=None, password_max_age_days=30, password_type="AlphaNumeric",
        password_min_length=10, screensaver_idle_minutes=None,
    )
    return computer, user


def check_golden(name, value):
    path = GOLDEN / name
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), "missing golden file %s: run with UPDATE_GOLDEN=1" % path
    assert json.loads(path.read_text()) == json.loads(text)


@pytest.mark.parametrize("mode", ["partner_compliance", "inventory"])
def test_entities_match_the_golden_files(mode):
    computer, user = appendix_mac()
    entities = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW, inventory_mode=mode == "inventory")
    check_golden("entities_%s.json" % mode, entities)


def test_inventory_mode_formats_as_the_appendix_shows():
    computer, user = appendix_mac()
    (entity,) = entities_for(TENANT_GUID, computer, user, 2, "compliant", NOW, inventory_mode=True)
    assert entity["State"] == 2
    assert entity["Encrypted"] == "TRUE"
    assert entity["Gatekeeper"] == "App Store and identified developers"
    assert entity["SIP"] == "TRUE"
    assert entity["MinimumPasswordCharSets"] == "NotEnforced"
    assert entity["PasscodeLength"] == "10"
    assert entity["RAM"] == "8.0 GB"
    assert entity["BusSpeed"] == "1.10 GHz"
    assert entity["CacheSize"] == "4MB"
    assert entity["BatteryCapacity"] == "91%"
    assert entity["ADDomainJoined"] == "ad.jamf.com"
    computer.sip, computer.gatekeeper, computer.ad_status = "NOT_COLLECTED", "DISABLED", "Not Bound"
    (entity,) = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW, inventory_mode=True)
    assert (entity["SIP"], entity["Gatekeeper"], entity["ADDomainJoined"]) == ("FALSE", "FALSE", "FALSE")


def test_a_retired_mac_is_reported_deactivated_and_not_managed():
    computer, user = appendix_mac()
    device, verdict = entities_for(TENANT_GUID, computer, user, 1, "notCompliant", NOW)
    assert (device["State"], device["DeviceManagementState"]) == (1, "notManaged")
    assert verdict["complianceStatus"] == "notCompliant"


def test_payload_hash_ignores_only_the_volatile_timestamps():
    computer, user = appendix_mac()
    a = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW)
    b = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW + datetime.timedelta(hours=1))
    computer.last_check_in += datetime.timedelta(minutes=15)  # a routine check-in
    c = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW)
    d = entities_for(TENANT_GUID, computer, user, 0, "notCompliant", NOW)
    e = entities_for(TENANT_GUID, computer, user, 2, "compliant", NOW)
    assert payload_hash(a) == payload_hash(b) == payload_hash(c)
    assert len({payload_hash(a), payload_hash(d), payload_hash(e)}) == 3


def test_upload_body_carries_content_as_a_json_string():
    computer, user = appendix_mac()
    entities = entities_for(TENANT_GUID, computer, user, 0, "compliant", NOW)
    body = upload_body(TENANT_GUID, entities, NOW)
    assert isinstance(body["Content"], str)
    assert json.loads(body["Content"]) == entities
    assert body["UploadTime"] == "2024-06-07T14:00:00.000000Z"  # always microseconds, as the client sends it


_text = st.one_of(st.none(), st.text(max_size=12),
                  st.sampled_from(["", " 15.1 ", "José's Mac \"Pro\" 100%", "a\x00\n"]))


@settings(max_examples=300, deadline=None)
@given(name=_text, serial=_text, udid=_text, computer_device=_text, user_device=_text, user_id=st.text(max_size=8),
       os_version=_text, state=st.sampled_from([0, 1, 2, 3]),
       status=st.sampled_from(["compliant", "noncompliant", "é"]),
       check_in=st.one_of(st.none(), st.datetimes(timezones=st.just(datetime.UTC))),
       report_date=st.one_of(st.none(), st.datetimes(timezones=st.just(datetime.UTC))), guid=st.text(max_size=6))
def test_partner_report_text_is_json_dumps_of_the_entities_and_its_hash(
        name, serial, udid, computer_device, user_device, user_id, os_version, state, status, check_in, report_date,
        guid):
    # The outbox fills templates instead of building and dumping the entities: the text and the hash must be exactly
    # what json.dumps(entities_for(...)) and payload_hash(...) give, for any value, None and non-ASCII included.
    computer = Computer(name=name, serial_number=serial, udid=udid, entra_device_id=computer_device,
                        last_check_in=check_in, last_inventory_update=report_date, os_version=os_version)
    user = UserAccount(entra_device_id=user_device, entra_user_id=user_id)
    entities = entities_for(guid, computer, user, state, status, NOW)
    text, digest = partner_report(json.dumps(str(guid)), computer, user, state, status, json.dumps(isoformat(NOW)))
    assert text == json.dumps(entities)
    assert digest == payload_hash(entities)
