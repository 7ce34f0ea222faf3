"""API tokens: hashed, expiring, shown once (API and admin), per user; wrong tokens are throttled."""

import datetime
import re

from django.contrib.admin.models import LogEntry
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api.conftest import token_client


def test_token_created_through_the_api_is_shown_once_and_stored_hashed(api, admin_a):
    client = APIClient()
    client.force_login(admin_a)  # the browsable API's session
    response = client.post("/api/v1/tokens/", {"expires_in_days": 30}, format="json")
    assert response.status_code == 201, response.content
    token = response.json()["token"]
    assert token.startswith("mcp_")
    stored = AuthToken.objects.get(user=admin_a)
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    assert abs(stored.expiry - (timezone.now() + datetime.timedelta(days=30))) < datetime.timedelta(minutes=1)
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [row["token"] for row in listed] == [None]
    assert client.get("/api/v1/tokens/%s/" % stored.digest).json()["token"] is None
    # The token works, and revoking it ends it.
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION="Token " + token)
    assert bearer.get("/api/v1/computers/").status_code == 200
    assert bearer.delete("/api/v1/tokens/%s/" % stored.digest).status_code == 204
    assert bearer.get("/api/v1/computers/").status_code == 401


def test_lifetime_is_capped(api, admin_a, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    response = api.as_user(admin_a).post("/api/v1/tokens/", {"expires_in_days": 31}, format="json")
    assert response.status_code == 400 and "expires_in_days" in response.json()


def test_expired_token_is_refused(api, admin_a):
    client = token_client(admin_a)
    AuthToken.objects.filter(user=admin_a).update(expiry=timezone.now() - datetime.timedelta(seconds=1))
    assert client.get("/api/v1/computers/").status_code == 401


def test_inactive_user_token_is_refused(api, admin_a):
    client = token_client(admin_a)
    admin_a.is_active = False
    admin_a.save()
    assert client.get("/api/v1/computers/").status_code == 401


def test_admin_creates_a_token_and_shows_it_once(client, admin_a, admin_b):
    client.force_login(admin_a)
    response = client.get("/admin/portal/apitoken/add/")
    assert response.status_code == 200
    # A customer admin may only mint tokens for themselves.
    assert admin_b.username not in response.content.decode()
    response = client.post("/admin/portal/apitoken/add/", {"user": admin_b.pk, "expires_in_days": 30})
    assert response.status_code == 200 and not AuthToken.objects.exists()
    response = client.post("/admin/portal/apitoken/add/", {"user": admin_a.pk, "expires_in_days": 30}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    # One message, holding the token once; no second "was added" message naming the token by its digest.
    assert len(messages) == 1, messages
    token = re.search(r'<code class="new-token">([^<]+)</code>', messages[0]).group(1)
    assert "will not be shown again" in messages[0] and messages[0].count(token) == 1
    stored = AuthToken.objects.get(user=admin_a)
    text = re.sub(r"<[^>]+>", " ", response.content.decode())  # what the page shows, attributes aside
    assert token.startswith(stored.token_key) and stored.digest not in text
    assert APIClient(HTTP_AUTHORIZATION="Token " + token).get("/api/v1/computers/").status_code == 200
    # Not shown again: not on the list (which links to no token page, so no digest in any URL either).
    listing = client.get("/admin/portal/apitoken/").content.decode()
    assert token not in listing and stored.digest not in re.sub(r"<[^>]+>", " ", listing)
    assert "/%s/" % stored.digest not in listing
    # Recent actions name the token by its key's first characters, not by its digest.
    entry = LogEntry.objects.get()
    assert entry.object_repr.startswith(stored.token_key) and stored.digest not in entry.object_repr


def test_token_list_says_valid_or_expired_in_words(client, admin_a):
    AuthToken.objects.create(user=admin_a, expiry=datetime.timedelta(days=30))
    old, _ = AuthToken.objects.create(user=admin_a, expiry=datetime.timedelta(days=1))
    AuthToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - datetime.timedelta(days=1))
    client.force_login(admin_a)
    listing = client.get("/admin/portal/apitoken/").content.decode()
    assert listing.count("badge-ok") == 1 and "Valid until" in listing
    assert listing.count("badge-bad") == 1 and "Expired" in listing
    assert "icon-no.svg" not in listing  # no red ✗ beside a valid token
    index = client.get("/admin/").content.decode()
    assert "API tokens" in index and "Knox" not in index  # grouped under "Tenants and access", not "Knox"


def test_admin_lists_only_your_own_tokens(client, admin_a, admin_b, msp_user):
    AuthToken.objects.create(user=admin_b)
    mine, _ = AuthToken.objects.create(user=admin_a)
    client.force_login(admin_a)
    listing = client.get("/admin/portal/apitoken/").content.decode()
    assert mine.token_key in listing and admin_b.username not in listing
    client.force_login(msp_user)
    assert admin_b.username in client.get("/admin/portal/apitoken/").content.decode()


def test_wrong_tokens_are_throttled_per_ip(api, settings, db):
    from portal.api.throttling import AnonymousRateThrottle

    AnonymousRateThrottle.THROTTLE_RATES = {**AnonymousRateThrottle.THROTTLE_RATES, "anon": "3/min"}
    try:
        client = APIClient(HTTP_AUTHORIZATION="Token mcp_0123456789abcdef")
        codes = [client.get("/api/v1/computers/").status_code for _ in range(5)]
    finally:
        AnonymousRateThrottle.THROTTLE_RATES = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    assert codes == [401, 401, 401, 429, 429]


def test_each_token_has_its_own_budget(api, admin_a):
    from portal.api.throttling import TokenRateThrottle

    original = TokenRateThrottle.THROTTLE_RATES
    TokenRateThrottle.THROTTLE_RATES = {**original, "token": "2/min"}
    try:
        first, second = token_client(admin_a), token_client(admin_a)
        assert [first.get("/api/v1/tokens/").status_code for _ in range(3)] == [200, 200, 429]
        assert second.get("/api/v1/tokens/").status_code == 200
        assert "Retry-After" in first.get("/api/v1/tokens/")
    finally:
        TokenRateThrottle.THROTTLE_RATES = original

