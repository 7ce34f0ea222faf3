"""The simulator's own plumbing: HTTPS with its CA, the control endpoint, the generic faults."""

import pytest
import requests


def get(sim, path, **kwargs):
    return requests.get(sim.base_url + path, verify=str(sim.ca_path), timeout=5, **kwargs)


def test_serves_https_with_its_own_ca_only(simulator):
    assert get(simulator, "/_sim/state").status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(simulator.base_url + "/_sim/state", verify=True, timeout=5)


def test_fault_knobs_through_the_control_endpoint(simulator):
    r = requests.post(simulator.base_url + "/_sim/faults", json={"throttle_rate": 1.0, "retry_after": 3},
                      verify=str(simulator.ca_path), timeout=5)
    assert r.status_code == 200
    answer = get(simulator, "/graph/anything")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    simulator.set_faults(throttle_rate=0.0, error_rate=1.0)
    assert get(simulator, "/graph/anything").status_code == 503
    simulator.set_faults(error_rate=0.0, drop_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(simulator, "/graph/anything")
    simulator.reset()
    assert get(simulator, "/graph/anything").status_code == 404
    assert simulator.counts["fault:429"] == 0  # reset forgets counts too


def test_faults_can_target_path_prefixes(simulator):
    simulator.set_faults(error_rate=1.0, paths=["/intune"])
    assert get(simulator, "/intune/x").status_code == 503
    assert get(simulator, "/graph/x").status_code == 404


def test_settling_memory_moves_what_the_simulator_holds_out_of_the_collectors_sight(simulator):
    import gc

    try:
        answer = requests.post(simulator.base_url + "/_sim/gc", verify=str(simulator.ca_path), timeout=30)
        assert answer.status_code == 200 and answer.json()["frozen"] > 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test simulator runs in this process
