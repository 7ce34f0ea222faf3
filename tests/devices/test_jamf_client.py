"""The Jamf Pro API client against the simulated Jamf Pro over real HTTPS."""

import datetime

import pytest

from devices.jamf.client import (
    SECTIONS,
    JamfAuthError,
    JamfClient,
    JamfError,
    parse_version,
    report_date_filter,
)
from devices.jamf.mapping import map_computer_record
from tests.devices.jamf_helpers import client_for, connect


def test_token_then_paged_inventory_with_every_section(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=23)
    with client_for(tenant_a, page_size=5) as client:
        records = list(client.iter_computers())
    assert [r["id"] for r in records] == [str(n) for n in range(1, 24)]
    assert {"general", "hardware", "operatingSystem", "security", "diskEncryption", "localUserAccounts",
            "userAndLocation", "applications"} <= set(records[0])
    assert "purchasing" not in records[0]  # only the sections asked for
    # The records are the demo generator's: the mapping takes them as they are.
    assert map_computer_record(records[0]).jamf_id == "1"
    assert simulator.counts["route:jamf_token"] == 1  # one token for every page
    assert simulator.counts["route:jamf_inventory"] == 5


def test_version_is_detected_and_v4_renames_last_contact(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=3, version="11.30.1")
    with client_for(tenant_a) as client:
        assert client.inventory_version() == "v4"
        record = next(client.iter_computers())
    assert "lastContact" in record["general"] and "lastContactTime" not in record["general"]
    assert map_computer_record(record).computer["last_check_in"] is not None

    connect(tenant_a, simulator, count=3, version="11.29.0")
    with client_for(tenant_a) as client:
        assert client.inventory_version() == "v3"
        assert "lastContactTime" in next(client.iter_computers())["general"]


def test_version_set_per_tenant_wins_over_detection(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=2, version="11.30.1")
    tenant_a.jamf_api_version = "v3"
    tenant_a.save()
    with client_for(tenant_a) as client:
        assert client.inventory_version() == "v3"
        list(client.iter_computers())
    assert simulator.counts["route:jamf_version"] == 0


def test_token_path_falls_back_to_v1(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=2, legacy_token_path=True)
    with client_for(tenant_a) as client:
        assert len(list(client.iter_computers())) == 2
        client.token(force=True)
    assert simulator.counts["route:jamf_token"] == 1  # tried once, then remembered the v1 path
    assert simulator.counts["route:jamf_token_v1"] == 2


def test_token_is_renewed_before_it_expires(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=4, token_ttl=2)
    with client_for(tenant_a, page_size=2) as client:
        first = client.token()
        assert client.token() == first  # still fresh
        client._token_expires = 0  # as if the renewal margin had been reached
        assert client.token() != first
        assert len(list(client.iter_computers())) == 4


def test_a_revoked_token_is_replaced_once(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=2)
    with client_for(tenant_a) as client:
        client.token()
        jamf.revoke(tenant_a.slug)
        assert len(list(client.iter_computers())) == 2
    assert simulator.counts["route:jamf_token"] == 2


def test_wrong_secret_is_an_auth_error_in_plain_words(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=2)
    tenant_a.jamf_client_secret = "wrong"
    with pytest.raises(JamfAuthError, match="client ID and secret"):
        client_for(tenant_a).token()


def test_rsql_filter_on_report_date(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=20)
    jamf.change(tenant_a.slug, count=3, kind="inventory", seed=1)
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=30)  # the fleet is >= 1 min older
    with client_for(tenant_a) as client:
        changed = list(client.iter_computers(rsql=report_date_filter(since)))
    assert len(changed) == 3
    assert report_date_filter(datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)) == \
        'general.reportDate>="2024-05-01T12:00:00Z"'


def test_throttling_and_errors_are_retried_honouring_retry_after(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=6)
    client = client_for(tenant_a, page_size=3)
    client.inventory_version()
    simulator.set_faults(throttle_rate=1.0, retry_after=7, paths=["/jamf/"])
    sleeps = []
    client._sleep = sleeps.append
    with pytest.raises(JamfError, match="429"):
        client.computers_page(0)
    assert sleeps == [7, 7, 7, 7]  # Retry-After, MAX_RETRIES times
    simulator.set_faults(throttle_rate=0.0, error_rate=0.5)
    assert len(list(client.iter_computers())) == 6  # 503s retried with backoff until they pass
    client.close()


def test_dropped_connections_are_retried(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=3)
    client = client_for(tenant_a)
    client.inventory_version()
    simulator.set_faults(drop_rate=1.0, paths=["/jamf/"])
    with pytest.raises(JamfError, match="could not be reached"):
        client.computers_page(0)
    client.close()


def test_at_most_five_connections_at_once(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=60)
    with client_for(tenant_a, page_size=2) as client:
        assert len(list(client.iter_computers())) == 60
    assert 1 < jamf.max_in_flight <= 5


def test_one_computer_and_a_missing_one(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=5)
    with client_for(tenant_a) as client:
        assert client.get_computer("3")["id"] == "3"
        assert client.get_computer("99") is None
        ok, message = client.test_connection()
    assert ok and "5 computers" in message


def test_an_unavailable_server_is_not_taken_for_v3(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=2)
    client = client_for(tenant_a)
    client.token()
    simulator.set_faults(error_rate=1.0, paths=["/jamf/"])
    with pytest.raises(JamfError, match="503"):
        client.inventory_version()
    assert client.api_version is None
    client.close()


def test_from_tenant_needs_credentials(tenant_a):
    with pytest.raises(JamfError, match="no Jamf Pro URL"):
        JamfClient.from_tenant(tenant_a)


def test_sections_cover_the_mapping():
    assert set(SECTIONS) == {"GENERAL", "HARDWARE", "OPERATING_SYSTEM", "SECURITY", "DISK_ENCRYPTION",
                             "LOCAL_USER_ACCOUNTS", "USER_AND_LOCATION", "APPLICATIONS"}


@pytest.mark.parametrize("text,expected", [("11.30.1-t1712345678", (11, 30)), ("10.49.0", (10, 49)), ("x", None)])
def test_parse_version(text, expected):
    assert parse_version(text) == expected
