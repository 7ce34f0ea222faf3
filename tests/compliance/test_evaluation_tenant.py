"""evaluate_tenant, the importer hook and the hourly sweep, against the database."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.evaluation import evaluate_tenant, sweep_candidates, sweep_tenant
from compliance.models import CompliancePolicy
from compliance.tasks import evaluate_tenant_task, sweep_task
from devices.importer import import_records
from devices.jamf.samples import make_record
from devices.models import Computer, UserAccount
from tests.factories import ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


def create_policy(tenant, **kw):
    # Saved with a queryset: the model's save() would queue a task, which these tests do not want.
    CompliancePolicy.objects.bulk_create([CompliancePolicy(tenant=tenant, name=kw.pop("name", "Baseline"), **kw)])


def fleet(tenant, n, now, **kw):
    computers = ComputerFactory.create_batch(
        n, tenant=tenant, last_check_in=now - HOUR, last_inventory_update=now - HOUR, entra_device_id="dev",
        company_portal_version="5.0", company_portal_seen_at=now - 10 * DAY, **kw,
    )
    for computer in computers:
        UserAccountFactory(computer=computer, username="ada", entra_device_id="dev", entra_user_id="u",
                           password_min_length=12)
        UserAccountFactory(computer=computer, username="admin", password_min_length=4)
    return computers


def test_results_are_stored_on_computers_and_users(tenant_a):
    now = timezone.now()
    create_policy(tenant_a, require_filevault=True, password_min_length=10)
    good, bad = fleet(tenant_a, 2, now)
    Computer.objects.filter(pk=bad.pk).update(filevault_state="NOT_ENCRYPTED")

    result = evaluate_tenant(tenant_a.pk, now=now)

    assert result.counters == {
        "computers": 2, "users": 4, "computers_changed": 2, "users_changed": 4, "skipped_concurrent": 0,
        "compliant": 1, "not_compliant": 1, "unresponsive": 0,
    }
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.compliance_status, good.failed_rules, good.inventory_state, good.registration_state) == (
        "compliant", [], 0, "registered")
    assert (bad.compliance_status, bad.failed_rules) == ("notCompliant", ["filevault_off"])
    assert good.evaluated_at == now
    users = {u.username: u for u in good.user_accounts.all()}
    assert (users["ada"].compliance_status, users["ada"].registration_state, users["ada"].failed_rules) == (
        "compliant", "registered", [])
    # admin: not registered (Company Portal 10 days, > 3) and too short a password
    assert (users["admin"].compliance_status, users["admin"].registration_state, users["admin"].failed_rules) == (
        "notCompliant", "account_not_onboarded", ["password_min_length"])


def test_a_second_run_writes_nothing_and_a_change_writes_one_row(tenant_a):
    now = timezone.now()
    create_policy(tenant_a, require_sip=True)
    computers = fleet(tenant_a, 5, now)
    evaluate_tenant(tenant_a.pk, now=now)

    with CaptureQueriesContext(connection) as ctx:
        again = evaluate_tenant(tenant_a.pk, now=now + HOUR)
    assert (again.computers_changed, again.users_changed) == (0, 0)
    assert not [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]

    Computer.objects.filter(pk=computers[2].pk).update(sip="DISABLED")
    changed = evaluate_tenant(tenant_a.pk, now=now + 2 * HOUR)
    assert (changed.computers_changed, changed.users_changed) == (1, 2)
    assert changed.changed_computer_ids == [computers[2].pk]
    assert Computer.objects.get(pk=computers[2].pk).evaluated_at == now + 2 * HOUR
    assert Computer.objects.get(pk=computers[1].pk).evaluated_at == now


def test_queries_do_not_grow_with_the_fleet(tenant_a, tenant_b):
    now = timezone.now()
    for tenant in (tenant_a, tenant_b):
        create_policy(tenant, require_filevault=True, password_min_length=8)
    fleet(tenant_a, 4, now)
    fleet(tenant_b, 40, now)
    counts = []
    for tenant in (tenant_a, tenant_b):
        with CaptureQueriesContext(connection) as ctx:
            result = evaluate_tenant(tenant.pk, now=now)
        counts.append(len(ctx.captured_queries))
        assert result.queries <= len(ctx.captured_queries)
    assert counts[0] == counts[1]
    assert counts[1] <= 10


def test_only_the_given_computers_are_evaluated(tenant_a):
    now = timezone.now()
    create_policy(tenant_a, require_filevault=True)
    computers = fleet(tenant_a, 3, now)
    result = evaluate_tenant(tenant_a.pk, computer_ids=[computers[0].pk], now=now)
    assert (result.computers, result.users) == (1, 2)
    assert list(Computer.objects.filter(evaluated_at__isnull=False).values_list("pk", flat=True)) == [computers[0].pk]


def test_other_tenants_are_untouched(tenant_a, tenant_b):
    now = timezone.now()
    fleet(tenant_a, 2, now)
    other = fleet(tenant_b, 2, now)
    evaluate_tenant(tenant_a.pk, computer_ids=[c.pk for c in other], now=now)  # ids of another tenant
    assert not Computer.objects.filter(tenant=tenant_b, evaluated_at__isnull=False).exists()


def test_a_row_written_while_evaluating_is_left_to_its_writer(tenant_a):
    now = timezone.now()
    computers = fleet(tenant_a, 2, now)
    # Inventory written after the evaluation began (another worker's import): its writer re-evaluates it.
    Computer.objects.filter(pk=computers[0].pk).update(updated_at=timezone.now() + HOUR)
    result = evaluate_tenant(tenant_a.pk, now=now)
    assert result.skipped_concurrent == 1
    assert result.changed_computer_ids == [computers[1].pk]
    assert Computer.objects.get(pk=computers[0].pk).evaluated_at is None
    assert not UserAccount.objects.filter(computer=computers[0], evaluated_at__isnull=False).exists()


def test_import_evaluates_the_computers_each_batch_changed(tenant_a):
    create_policy(tenant_a, require_filevault=True, require_sip=True)
    records = [make_record(n, "alpha", users=2) for n in range(1, 13)]
    records[0] = make_record(1, "alpha", users=2, profile="unencrypted")
    records[1] = make_record(2, "alpha", users=2, profile="sip_off")
    import_records(tenant_a, records, batch_size=5)
    assert not Computer.objects.filter(tenant=tenant_a, evaluated_at__isnull=True).exists()
    assert not UserAccount.objects.filter(evaluated_at__isnull=True).exists()
    assert Computer.objects.get(jamf_id="1").failed_rules == ["filevault_off"]
    assert Computer.objects.get(jamf_id="2").failed_rules == ["sip_off"]

    # A re-import that changes nothing evaluates nothing: no UPDATE at all.
    with CaptureQueriesContext(connection) as ctx:
        import_records(tenant_a, records, batch_size=5)
    assert not [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_import_evaluation_costs_a_few_queries_per_batch(tenant_a):
    create_policy(tenant_a, require_filevault=True)
    small = [make_record(n, "alpha", users=1, profile="healthy") for n in range(1, 6)]
    big = [make_record(n, "alpha", users=1, profile="healthy") for n in range(6, 46)]
    with CaptureQueriesContext(connection) as ctx:
        import_records(tenant_a, small, batch_size=100)
    few = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        import_records(tenant_a, big, batch_size=100)
    # Eight times the Macs, a handful more queries (result groups), never one per Mac.
    assert len(ctx.captured_queries) <= few + 8


# -- The hourly sweep --------------------------------------------------------------------------


def test_sweep_moves_a_mac_across_the_unresponsive_line(tenant_a):
    now = timezone.now()
    create_policy(tenant_a)
    crossing, fresh = fleet(tenant_a, 2, now)
    Computer.objects.filter(pk=crossing.pk).update(last_check_in=now - 23 * HOUR)
    evaluate_tenant(tenant_a.pk, now=now)
    assert set(sweep_candidates(tenant_a, now).values_list("pk", flat=True)) == set()

    later = now + 2 * HOUR
    assert list(sweep_candidates(tenant_a, later).values_list("pk", flat=True)) == [crossing.pk]
    result = sweep_tenant(tenant_a, now=later)
    assert result.changed_computer_ids == [crossing.pk]
    assert Computer.objects.get(pk=crossing.pk).inventory_state == 2
    assert Computer.objects.get(pk=fresh.pk).inventory_state == 0
    assert sweep_tenant(tenant_a, now=later).computers == 0  # nothing left to move


def test_sweep_moves_a_mac_across_the_validity_line(tenant_a):
    now = timezone.now()
    create_policy(tenant_a)
    crossing, _ = fleet(tenant_a, 2, now)
    Computer.objects.filter(pk=crossing.pk).update(last_inventory_update=now - 30 * DAY + HOUR)
    evaluate_tenant(tenant_a.pk, now=now)
    assert Computer.objects.get(pk=crossing.pk).compliance_status == "compliant"
    result = sweep_tenant(tenant_a, now=now + 2 * HOUR)
    assert result.computers == 1  # only the candidate was loaded
    computer = Computer.objects.get(pk=crossing.pk)
    assert (computer.compliance_status, computer.failed_rules) == ("notCompliant", ["validity_expired"])
    assert sweep_candidates(tenant_a, now + 2 * HOUR).count() == 0


def test_sweep_catches_policy_inventory_age_and_account_not_onboarded(tenant_a):
    now = timezone.now()
    create_policy(tenant_a, max_inventory_age_days=3)
    aging, onboarding = fleet(tenant_a, 2, now)
    Computer.objects.filter(pk=aging.pk).update(last_inventory_update=now - 2 * DAY)
    Computer.objects.filter(pk=onboarding.pk).update(company_portal_seen_at=now - 2 * DAY)
    UserAccount.objects.filter(computer=onboarding).update(entra_user_id="", entra_device_id="")
    Computer.objects.filter(pk=onboarding.pk).update(entra_device_id="")
    evaluate_tenant(tenant_a.pk, now=now)
    assert Computer.objects.get(pk=onboarding.pk).registration_state == "not_started"

    later = now + 2 * DAY
    assert set(sweep_candidates(tenant_a, later, 3).values_list("pk", flat=True)) == {aging.pk, onboarding.pk}
    sweep_tenant(tenant_a, now=later)
    assert Computer.objects.get(pk=aging.pk).failed_rules == ["inventory_too_old"]
    assert Computer.objects.get(pk=onboarding.pk).registration_state == "account_not_onboarded"
    assert set(UserAccount.objects.filter(computer=onboarding).values_list("registration_state", flat=True)) == {
        "account_not_onboarded"}


def test_sweep_task_covers_every_active_tenant(tenant_a, tenant_b):
    now = timezone.now()
    fleet(tenant_a, 2, now)
    fleet(tenant_b, 3, now)
    tenant_b.is_active = False
    tenant_b.save()
    totals = sweep_task()  # never evaluated: all of tenant_a's Macs are candidates
    assert totals["computers"] == 2
    assert Computer.objects.filter(tenant=tenant_b, evaluated_at__isnull=True).count() == 3


def test_evaluate_tenant_task_returns_counters(tenant_a):
    fleet(tenant_a, 2, timezone.now())
    counters = evaluate_tenant_task(tenant_a.pk)
    assert counters["computers"] == 2 and counters["not_compliant"] == 2  # no policy: not compliant
    assert {tuple(r) for r in Computer.objects.values_list("failed_rules", flat=True)} == {("no_policy",)}


def test_a_row_written_between_the_check_and_the_update_is_skipped(tenant_a):
    from compliance.evaluation.store import EvaluationResult, _write_grouped, _write_postgresql

    now = timezone.now()
    late, fine = fleet(tenant_a, 2, now)
    started = timezone.now()
    Computer.objects.filter(pk=late.pk).update(updated_at=started + HOUR)
    computer_groups = {(0, "compliant", "registered", ()): [late.pk, fine.pk]}
    user_groups = {("compliant", "registered", ()): [(u.pk, u.computer_id) for u in UserAccount.objects.all()]}
    writer = _write_postgresql if connection.vendor == "postgresql" else _write_grouped
    skipped = set()
    result = EvaluationResult()
    assert writer(result, computer_groups, user_groups, skipped, started, now) == [fine.pk]
    assert skipped == {late.pk}
    assert result.users_changed == 2
    assert not UserAccount.objects.filter(computer=late, evaluated_at__isnull=False).exists()
    assert Computer.objects.get(pk=fine.pk).failed_rules == []


def test_a_tenant_is_evaluated_slice_by_slice(tenant_a):
    now = timezone.now()
    create_policy(tenant_a, require_filevault=True, password_min_length=10)
    computers = fleet(tenant_a, 7, now)
    Computer.objects.filter(pk__in=[computers[1].pk, computers[5].pk]).update(filevault_state="NOT_ENCRYPTED")
    with CaptureQueriesContext(connection) as ctx:
        result = evaluate_tenant(tenant_a.pk, now=now, slice_size=3)
    assert (result.computers, result.users, result.computers_changed, result.users_changed) == (7, 14, 7, 14)
    assert sorted(result.changed_computer_ids) == sorted(c.pk for c in computers)
    assert set(Computer.objects.failing_rule("filevault_off").values_list("pk", flat=True)) == {
        computers[1].pk, computers[5].pk}
    assert len(ctx.captured_queries) < 40  # three slices, a few queries each
    assert evaluate_tenant(tenant_a.pk, now=now, slice_size=3).computers_changed == 0
