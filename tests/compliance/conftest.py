"""Fixtures of the outbox, delivery, reliability and sync_intune tests."""

import pytest

from compliance.intune.client import clear_caches
from tests.compliance.sync_helpers import enable


@pytest.fixture
def fast_delivery(settings):
    """Backoffs of milliseconds, one thread, small batches: the reliability cases run in seconds."""
    settings.INTUNE_BATCH_SIZE = 5
    settings.INTUNE_BACKOFF_BASE = 0.01
    settings.INTUNE_BACKOFF_MAX = 0.05
    settings.INTUNE_DELIVERY_CONCURRENCY = 1
    settings.INTUNE_DELIVERY_HTTP_RETRIES = 1
    settings.INTUNE_DELIVERY_MAX_RETRY_WAIT = 0.05
    settings.INTUNE_DELIVERY_MAX_ATTEMPTS = 12
    settings.INTUNE_MAX_RETRY_WAIT = 0.05
    settings.INTUNE_DELIVERY_TIME_BUDGET = 60
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    clear_caches()
    yield settings
    clear_caches()


@pytest.fixture
def intune_tenant(simulator, tenant_a, fast_delivery):
    """tenant_a connected to the simulated Entra ID and Intune, with the integration enabled."""
    enable(simulator, tenant_a)
    return tenant_a
