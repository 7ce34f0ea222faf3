import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_landing_cache():
    """Landing pages cache tenant settings per process: start every test from a cold cache."""
    cache.clear()
    yield
    cache.clear()
