"""Admin logins are throttled (design section 8)."""

import pytest

pytestmark = pytest.mark.django_db


def attempt(client, username, password, address="127.0.0.1"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_failures_lock_out_then_success_is_refused_too(client, msp_user, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert attempt(client, "msp", "wrong").status_code == 200  # the form again, with an error
    locked = attempt(client, "msp", "pw-for-tests-1")
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0


def test_a_success_below_the_limit_clears_the_user_count(client, msp_user, settings):
    # Each attempt from its own address, so only the user's count matters.
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    assert attempt(client, "msp", "wrong", "10.0.0.1").status_code == 200
    assert attempt(client, "msp", "pw-for-tests-1", "10.0.0.2").status_code == 302
    client.logout()
    assert attempt(client, "msp", "wrong", "10.0.0.3").status_code == 200
    assert attempt(client, "msp", "wrong", "10.0.0.4").status_code == 200
    assert attempt(client, "msp", "pw-for-tests-1", "10.0.0.5").status_code == 302  # 2 failures since: not locked


def test_failures_from_one_address_lock_it_out_for_every_user(client, msp_user, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    for name in ("a", "b", "c"):
        attempt(client, name, "wrong", "10.9.9.9")
    assert attempt(client, "msp", "pw-for-tests-1", "10.9.9.9").status_code == 429
    assert attempt(client, "msp", "pw-for-tests-1", "10.9.9.8").status_code == 302


def test_the_login_page_itself_is_never_throttled(client, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    attempt(client, "someone", "wrong")
    assert client.get("/admin/login/").status_code == 200
