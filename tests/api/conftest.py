"""Fixtures for the API tests: API clients signed in with a knox token per role."""

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The factories hash a password per user; the API tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle buckets live in the cache: start every test with none."""
    cache.clear()
    yield
    cache.clear()


def token_client(user):
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + token)
    client.token = token
    return client


@pytest.fixture
def api():
    """An anonymous API client; ``api.as_user(user)`` gives one with a fresh token of that user."""
    client = APIClient()
    client.as_user = token_client
    return client
