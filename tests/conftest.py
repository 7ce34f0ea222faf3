import pytest

from portal import tenancy
from tests.factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (debounce marks, throttles, cached lookups)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha", slug="alpha")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo", slug="bravo")


@pytest.fixture
def msp_user(db):
    return UserFactory(username="msp", is_superuser=True)


def member(tenant, role, username=None):
    user = UserFactory(username=username or "%s-%s" % (tenant.slug, role))
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def admin_a(tenant_a):
    return member(tenant_a, tenancy.ADMIN)


@pytest.fixture
def viewer_a(tenant_a):
    return member(tenant_a, tenancy.VIEWER)


@pytest.fixture
def operator_a(tenant_a):
    return member(tenant_a, tenancy.OPERATOR)


@pytest.fixture
def admin_b(tenant_b):
    return member(tenant_b, tenancy.ADMIN)


# -- The simulator: one HTTPS server per test process, reset before each test that uses it. ----


@pytest.fixture(scope="session")
def simulator_server(tmp_path_factory):
    from simulator.app import create_simulator

    sim = create_simulator(cert_dir=tmp_path_factory.mktemp("simulator"), seed=1234).start()
    yield sim
    sim.stop()


@pytest.fixture
def simulator(simulator_server, settings):
    """The running simulator, reset, with the portal's clients pointed at it (every cloud)."""
    sim = simulator_server
    sim.reset()
    base = sim.base_url
    overrides = {"login": base, "graph": base + "/graph"}
    settings.PORTAL_CLOUD_OVERRIDES = {cloud: dict(overrides) for cloud in ("global", "usgov", "usgov_dod", "china")}
    settings.PORTAL_CA_BUNDLE = str(sim.ca_path)
    # The simulated Jamf Pro is on loopback: allow-listed as an operator allows an on-premises one.
    settings.PORTAL_OUTBOUND_ALLOWED_HOSTS = [sim.host]
    from compliance.intune.client import clear_caches

    clear_caches()  # msal apps, tokens and discovery results of earlier tests belong to a reset simulator
    yield sim
    sim.reset()
    clear_caches()


@pytest.fixture
def jamf(simulator):
    """The simulator's Jamf Pro service (simulator/jamf.py), reset with the simulator."""
    from devices import tasks
    from simulator.jamf import JamfService

    tasks._clients.clear()  # the worker's cached Jamf clients must not outlive a test
    yield simulator.service(JamfService)
    tasks._clients.clear()
