"""The client-secret lifecycle: the daily expiry warning (log and e-mail), the admin banner, the schedule."""

import datetime
import logging

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from compliance import connection
from compliance.tasks import check_secret_expiry
from tests.factories import ClientSecretFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 1, 6, 0, tzinfo=datetime.UTC)


def secret_expiring_in(tenant, days, hours=12):
    return ClientSecretFactory(tenant=tenant, expires_at=NOW + datetime.timedelta(days=days, hours=hours))


@pytest.mark.parametrize("days, warned", [(30, True), (29, False), (14, True), (7, True), (3, False), (1, True)])
def test_admins_are_warned_on_30_14_7_and_1_days_before(tenant_a, admin_a, viewer_a, days, warned, caplog):
    secret_expiring_in(tenant_a, days)
    with caplog.at_level(logging.WARNING):
        counters = check_secret_expiry(now=NOW)
    assert counters["warnings"] == int(warned)
    assert len(mail.outbox) == int(warned)
    if warned:
        message = mail.outbox[0]
        assert message.to == [admin_a.email]  # the tenant's admins, not its viewers
        assert "%d day" % days in message.subject
        assert tenant_a.client_id in message.body
        assert "expires in %d day" % days in caplog.text


def test_only_the_last_valid_secret_counts(tenant_a, admin_a):
    secret_expiring_in(tenant_a, 7)
    secret_expiring_in(tenant_a, 90)  # the rotation already happened: no warning
    ClientSecretFactory(tenant=tenant_a, expires_at=NOW - datetime.timedelta(days=1))
    assert check_secret_expiry(now=NOW)["warnings"] == 0
    assert mail.outbox == []


def test_msp_staff_are_told_when_the_tenant_has_no_admin(tenant_a):
    UserFactory(username="staff", is_superuser=True, email="noc@msp.example")
    secret_expiring_in(tenant_a, 1)
    check_secret_expiry(now=NOW)
    assert mail.outbox[0].to == ["noc@msp.example"]


def test_the_mail_never_contains_the_secret(tenant_a, admin_a):
    secret = secret_expiring_in(tenant_a, 14)
    check_secret_expiry(now=NOW)
    assert secret.value not in mail.outbox[0].body and secret.value not in mail.outbox[0].subject


def test_secret_warning_sentences(tenant_a):
    assert "has no client secret" in connection.secret_warning(tenant_a, now=NOW)
    old = ClientSecretFactory(tenant=tenant_a, expires_at=NOW - datetime.timedelta(days=2))
    assert "has expired" in connection.secret_warning(tenant_a, now=NOW)
    old.expires_at = NOW + datetime.timedelta(days=10, hours=1)
    old.save()
    assert "in 10 day(s)" in connection.secret_warning(tenant_a, now=NOW)
    old.expires_at = NOW + datetime.timedelta(days=40)
    old.save()
    assert connection.secret_warning(tenant_a, now=NOW) == ""


def test_banner_on_the_tenant_page_and_the_list(client, admin_a, tenant_a, tenant_b):
    ClientSecretFactory(tenant=tenant_a, expires_at=timezone.now() + datetime.timedelta(days=5, hours=1))
    ClientSecretFactory(tenant=tenant_b, expires_at=timezone.now() + datetime.timedelta(days=2))
    client.force_login(admin_a)
    text = client.get(reverse("admin:portal_tenant_change", args=[tenant_a.pk])).content.decode()
    assert "The last valid client secret of Alpha expires on" in text
    text = client.get(reverse("admin:portal_tenant_changelist")).content.decode()
    assert "The last valid client secret of Alpha" in text
    assert "Bravo" not in text  # another tenant's secrets are not this admin's business


def test_the_daily_schedule_exists_after_migrate(db):
    from django_q.models import Schedule

    from compliance.schedules import ensure_schedules

    ensure_schedules()
    ensure_schedules()  # idempotent
    schedule = Schedule.objects.get(name="compliance: daily client secret expiry check")
    assert schedule.func == "compliance.tasks.check_secret_expiry"
    assert schedule.schedule_type == Schedule.DAILY
    assert Schedule.objects.filter(func="compliance.tasks.check_secret_expiry").count() == 1


def test_a_membership_factory_admin_receives_it(tenant_a):
    user = UserFactory(username="second-admin", email="second@alpha.example")
    MembershipFactory(user=user, tenant=tenant_a, role="admin")
    secret_expiring_in(tenant_a, 30)
    check_secret_expiry(now=NOW)
    assert mail.outbox[0].to == ["second@alpha.example"]
