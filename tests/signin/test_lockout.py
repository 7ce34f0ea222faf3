"""Lockouts with django-axes (signin/lockout.py): every password sign-in, counted in the database."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.test import RequestFactory
from django.utils import timezone

from tests.signin.helpers import PASSWORD, sign_in, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    settings.PORTAL_TRUSTED_PROXIES = 0


@pytest.mark.parametrize("page", ["api", "account"])
def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, msp_user, page):
    # The attack from issue 13: every answer after the limit is the lockout, the right password included.
    answers = [sign_in(client, page, "msp", "wrong-%d" % i).status_code for i in range(30)]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    locked = sign_in(client, page, "msp", PASSWORD)
    assert locked.status_code == 429 and b"Too many failed sign-in attempts" in locked.content
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302  # to the login page
    attempt = AccessAttempt.objects.get(username="msp")
    assert attempt.failures_since_start == 31 and attempt.ip_address == "198.51.100.7"


def test_a_lockout_at_one_page_holds_at_the_other(client, msp_user):
    for _ in range(5):
        sign_in(client, "account", "msp", "wrong")
    assert sign_in(client, "api", "msp", PASSWORD).status_code == 429
    assert not signed_in(client)


def test_any_password_form_is_covered_because_authenticate_is(msp_user):
    # A future form that calls authenticate() is locked out too, without code of its own.
    factory = RequestFactory()

    def attempt(password):
        request = factory.post("/some/future/form/", REMOTE_ADDR="198.51.100.9")
        return authenticate(request, username="msp", password=password), request

    for _ in range(5):
        assert attempt("wrong")[0] is None
    user, request = attempt(PASSWORD)
    assert user is None and request.axes_locked_out


def test_the_lock_is_per_username_and_address(client, msp_user, admin_a):
    for _ in range(5):
        sign_in(client, "account", "msp", "wrong", address="198.51.100.7")
    assert sign_in(client, "account", "msp", PASSWORD, address="198.51.100.7").status_code == 429
    # The same user from another address, and another user from the locked address, still sign in:
    # one attacker cannot lock every user out (issue 13: behind a proxy one address locked out everyone).
    assert sign_in(client, "account", "msp", PASSWORD, address="203.0.113.5").status_code == 302
    client.logout()
    assert sign_in(client, "account", admin_a.username, PASSWORD, address="198.51.100.7").status_code == 302


def test_an_address_alone_has_a_higher_limit(client, msp_user):
    # A password spray: one address, a different username each time, never 5 for one username.
    for i in range(11):
        assert sign_in(client, "account", "user-%d" % i, "wrong").status_code == 200
    assert sign_in(client, "account", "user-11", "wrong").status_code == 429  # the 12th failure from the address
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 429
    assert sign_in(client, "account", "msp", PASSWORD, address="203.0.113.5").status_code == 302


def test_a_forged_forwarded_header_is_ignored_without_trusted_proxies(client, msp_user):
    for i in range(5):
        sign_in(client, "account", "msp", "wrong", HTTP_X_FORWARDED_FOR="10.1.1.%d" % i)
    assert sign_in(client, "account", "msp", PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_behind_one_trusted_proxy_the_address_the_proxy_saw_counts(client, msp_user, settings):
    settings.PORTAL_TRUSTED_PROXIES = 1
    proxy = "10.0.0.2"
    # Clients forge entries on the left; the proxy appends the real address on the right.
    for i in range(5):
        sign_in(client, "account", "msp", "wrong", address=proxy, HTTP_X_FORWARDED_FOR="1.2.3.%d, 203.0.113.50" % i)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.50"}
    assert (
        sign_in(client, "account", "msp", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code
        == 429
    )
    # Another client behind the same proxy is not locked out with it.
    assert (
        sign_in(client, "account", "msp", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.51").status_code
        == 302
    )


def test_the_lock_lifts_after_the_cool_off(client, msp_user, settings):
    settings.LOGIN_COOLOFF_MINUTES = 15
    for _ in range(5):
        sign_in(client, "account", "msp", "wrong")
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 429
    # 16 minutes later (the attempt's time moved back rather than waiting).
    AccessAttempt.objects.update(attempt_time=timezone.now() - datetime.timedelta(minutes=16))
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 302


def test_a_success_clears_only_its_own_failures(client, msp_user):
    for _ in range(4):
        sign_in(client, "account", "msp", "wrong")
    for i in range(3):
        sign_in(client, "account", "other-%d" % i, "wrong")
    assert sign_in(client, "account", "msp", PASSWORD).status_code == 302
    # msp's failures from that address are gone; the other usernames' stay, counting for the address.
    assert list(AccessAttempt.objects.order_by("username").values_list("username", flat=True)) == [
        "other-0",
        "other-1",
        "other-2",
    ]


def test_msp_staff_see_and_clear_lockouts_in_the_admin(client, msp_user, admin_a):
    for _ in range(5):
        sign_in(client, "account", admin_a.username, "wrong")
    attempt = AccessAttempt.objects.get()
    client.force_login(admin_a)  # a customer admin cannot see the attempts
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    client.force_login(msp_user)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and admin_a.username.encode() in page.content
    deleted = client.post("/admin/axes/accessattempt/%d/delete/" % attempt.pk, {"post": "yes"})
    assert deleted.status_code == 302 and not AccessAttempt.objects.exists()
    client.logout()
    assert sign_in(client, "account", admin_a.username, PASSWORD).status_code == 302
