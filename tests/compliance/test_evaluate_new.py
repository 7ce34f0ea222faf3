"""New Macs are written with their evaluation (devices.signals.computers_creating): the same results as
evaluating them after the write, and written once."""

import io
import json

import pytest

from compliance import signals as compliance_signals
from compliance.evaluation import store
from compliance.models import CompliancePolicy
from devices.importer import import_records, iter_records
from devices.jamf.samples import make_record
from devices.models import Computer, UserAccount
from devices.signals import computers_creating

pytestmark = pytest.mark.django_db

PROFILES = [None, "healthy", "unencrypted", "sip_off", "stale", "no_portal", "portal_unregistered"]


def _records():
    # Every profile, 0 to 3 local users, one record with no local users section at all.
    records = [make_record(n, "t", users=n % 4, profile=PROFILES[n % len(PROFILES)]) for n in range(1, 30)]
    records[5].pop("localUserAccounts")
    return records


def _policies(tenant):
    CompliancePolicy.objects.create(
        tenant=tenant, name="Baseline", min_os_version="14.5", require_filevault=True, require_sip=True,
        gatekeeper="app_store", require_auto_login_disabled=True, max_inventory_age_days=3,
    )
    CompliancePolicy.objects.create(tenant=tenant, name="Passwords", password_min_length=10,
                                    password_type="alphanumeric", password_history=5, screensaver_minutes=10)


def _import(tenant, records):
    return import_records(tenant, iter_records(io.BytesIO(json.dumps(records).encode())), batch_size=7)


def _results(tenant):
    computers = {
        c.jamf_id: (c.inventory_state, c.compliance_status, c.registration_state, c.failed_rules,
                    c.evaluated_at is None)
        for c in Computer.objects.filter(tenant=tenant)
    }
    users = {
        (u.computer.jamf_id, u.username): (u.compliance_status, u.registration_state, u.failed_rules,
                                           u.evaluated_at is None)
        for u in UserAccount.objects.filter(computer__tenant=tenant).select_related("computer")
    }
    return computers, users


@pytest.mark.parametrize("with_policies", [True, False])
def test_new_macs_get_the_evaluation_they_would_get_after_the_write(tenant_a, tenant_b, with_policies):
    if with_policies:
        _policies(tenant_a)
        _policies(tenant_b)
    records = _records()
    _import(tenant_a, records)  # evaluated before the write, written once
    computers_creating.disconnect(dispatch_uid="compliance.evaluate_new")
    try:
        _import(tenant_b, records)  # written, then evaluated by computers_changed's receiver
    finally:
        computers_creating.connect(compliance_signals.evaluate_new_computers, dispatch_uid="compliance.evaluate_new")
    expected = _results(tenant_b)
    assert _results(tenant_a) == expected
    computers, users = expected
    assert len(computers) == 29 and len(users) > 30
    assert {value[-1] for value in [*computers.values(), *users.values()]} == {False}  # every row evaluated
    assert len({repr(value[:4]) for value in computers.values()}) > 3  # a real mix of results


def test_the_evaluation_after_the_write_finds_nothing_to_change(tenant_a):
    _policies(tenant_a)
    records = _records()
    _import(tenant_a, records)
    again = store.evaluate_tenant(tenant_a.pk)
    assert again.computers == 29
    assert again.computers_changed == 0 and again.users_changed == 0


def test_created_macs_are_not_evaluated_again_but_updates_are(tenant_a, monkeypatch):
    _policies(tenant_a)
    evaluated = []
    real = compliance_signals.evaluate_tenant

    def spy(tenant_id, computer_ids=None, **kwargs):
        evaluated.append(sorted(computer_ids))
        return real(tenant_id, computer_ids=computer_ids, **kwargs)

    monkeypatch.setattr(compliance_signals, "evaluate_tenant", spy)
    records = _records()
    _import(tenant_a, records)
    assert evaluated == []  # every new Mac was written with its evaluation
    records[0]["operatingSystem"]["version"] = "13.0"
    result = _import(tenant_a, records)
    assert result.updated == 1
    assert evaluated == [[Computer.objects.get(tenant=tenant_a, jamf_id=str(records[0]["id"])).pk]]
    assert Computer.objects.get(tenant=tenant_a, jamf_id=str(records[0]["id"])).compliance_status == "notCompliant"


def test_a_failing_evaluation_of_new_macs_does_not_undo_their_inventory(tenant_a, monkeypatch):
    # compliance/signals.py: "A failing evaluation must not undo the inventory". Before the write, a database error
    # of the evaluation failed the batch and then every record of it ("the database refused the record").
    from django.db import connection

    from compliance.evaluation import core

    real = core.Requirements.from_policies.__func__

    def broken(cls, policies):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")  # as a statement timeout would: a DatabaseError
        return real(cls, policies)

    monkeypatch.setattr(core.Requirements, "from_policies", classmethod(broken))
    result = _import(tenant_a, _records())
    assert result.summary() == {"created": 29, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 0}
    assert Computer.objects.filter(tenant=tenant_a).count() == 29
    monkeypatch.undo()
    store.evaluate_tenant(tenant_a.pk)  # what the queued evaluation does
    assert not Computer.objects.filter(tenant=tenant_a, evaluated_at__isnull=True).exists()
