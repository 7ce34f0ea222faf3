import pytest


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    """Dozens of password checks per test: a cheap hasher keeps them quick (never in production)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
