"""The set-based edge: evaluate one tenant in a bounded number of queries and store what changed."""

import json
import logging
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IsNull
from django.utils import timezone

from compliance.evaluation.core import COMPLIANT, UNRESPONSIVE, Requirements, evaluate_computer
from devices.bulk import select_rows
from devices.models import Computer, UserAccount

logger = logging.getLogger(__name__)

# Rows per "id IN (...)" list: under SQLite's historical 999-variable limit, and big enough that a
# 100,000-Mac tenant needs few statements.
CHUNK = 900


# What is stored now is loaded cheaply, to write only what changes: the failed rules as their JSON
# text (decoding 300,000 JSON lists costs more than evaluating them) and "never evaluated" as a
# boolean (parsing a timestamp only to test it for null is the next biggest cost).
STORED = {
    "failed_text": Cast("failed_rules", TextField()),
    "never_evaluated": IsNull(F("evaluated_at"), True),
}
COMPUTER_FIELDS = (
    "id", "managed", "retired_at", "last_check_in", "last_inventory_update", "entra_device_id",
    "company_portal_version", "company_portal_seen_at", "os_version", "os_build", "filevault_state", "sip",
    "gatekeeper", "auto_login_disabled",
    "inventory_state", "compliance_status", "registration_state", *STORED,
)
USER_FIELDS = (
    "id", "computer_id", "entra_device_id", "entra_user_id", "password_min_length", "password_type",
    "password_min_complex_characters", "password_max_age_days", "password_history_depth",
    "screensaver_idle_minutes",
    "registration_state", "compliance_status", *STORED,
)
ComputerRow = NamedTuple("ComputerRow", [(name, object) for name in COMPUTER_FIELDS])
UserRow = NamedTuple("UserRow", [(name, object) for name in USER_FIELDS])


class _JsonText(dict):
    """codes tuple -> the JSON text the database holds for that list (as Django writes it)."""

    def __missing__(self, codes):
        text = self[codes] = json.dumps(list(codes))
        return text


@dataclass
class EvaluationResult:
    """What :func:`evaluate_tenant` did. ``counters`` is the plain dict a SyncRun stores."""

    computers: int = 0
    users: int = 0
    computers_changed: int = 0
    users_changed: int = 0
    skipped_concurrent: int = 0
    compliant: int = 0
    not_compliant: int = 0
    unresponsive: int = 0
    queries: int = 0
    changed_computer_ids: list = field(default_factory=list)
    policy_errors: list = field(default_factory=list)

    @property
    def counters(self):
        return {
            "computers": self.computers, "users": self.users, "computers_changed": self.computers_changed,
            "users_changed": self.users_changed, "skipped_concurrent": self.skipped_concurrent,
            "compliant": self.compliant, "not_compliant": self.not_compliant, "unresponsive": self.unresponsive,
        }


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


# Macs per slice of a tenant-wide run: memory stays flat whatever the fleet (a slice and its users
# are all that is held), and a 100,000-Mac tenant needs ten slices.
SLICE = 10_000


def evaluate_tenant(tenant_id, computer_ids=None, now=None, slice_size=SLICE):
    """Evaluate a tenant's Macs (all, or ``computer_ids``) and store the results that changed.

    The Macs are taken in slices of ``slice_size`` by ID (``computer_ids`` in chunks). Per slice:
    the computers, their users, one query for rows written meanwhile, then the writes (on
    PostgreSQL one ``UPDATE`` per 10,000 changed rows, elsewhere one per distinct result and chunk
    of rows), plus the tenant and its policies once. A row whose inventory was written after the
    run began is left alone: whoever wrote it re-evaluates it. Returns an
    :class:`EvaluationResult` (``.counters`` for a SyncRun, ``.changed_computer_ids``).
    """
    from compliance.models import CompliancePolicy
    from portal.models import Tenant

    now = now or timezone.now()
    started = timezone.now()
    result = EvaluationResult()
    tenant = Tenant.objects.get(pk=tenant_id)
    requirements = Requirements.from_policies(CompliancePolicy.objects.filter(tenant_id=tenant_id, enabled=True))
    result.policy_errors = requirements.errors
    for error in requirements.errors:
        logger.warning("tenant %s: %s", tenant.slug, error)
    result.queries = 2
    for computers, users in _slices(result, tenant_id, computer_ids, slice_size):
        computer_groups, user_groups = _evaluate_slice(result, computers, users, tenant, requirements, now)
        if computer_groups or user_groups:
            _write(result, computer_groups, user_groups, tenant_id, [c.id for c in computers], started, now)
    return result


def evaluate_new(tenant_id, computers, now=None):
    """Evaluate Macs that are about to be created (devices.signals.computers_creating) from their column values.

    ``computers``: dicts of every column the new row will hold, with its users' columns under ``"users"``.
    Returns, in the same order, (computer columns, [user columns]) to write with the rows: the same values
    :func:`evaluate_tenant` would store once they are written, so that evaluation then finds nothing to change
    and each new Mac is written once. Two queries (the tenant and its policies), whatever the number of Macs.
    """
    from compliance.models import CompliancePolicy
    from portal.models import Tenant

    now = now or timezone.now()
    tenant = Tenant.objects.get(pk=tenant_id)
    requirements = Requirements.from_policies(CompliancePolicy.objects.filter(tenant_id=tenant_id, enabled=True))
    unwritten = {"id": None, "failed_text": None, "never_evaluated": True}
    computer_values, user_values = operator.itemgetter(*COMPUTER_FIELDS), operator.itemgetter(*USER_FIELDS)
    derived = []
    for values in computers:
        computer = ComputerRow._make(computer_values({**values, **unwritten}))
        users = [UserRow._make(user_values({**user, **unwritten})) for user in values.get("users") or ()]
        outcome = evaluate_computer(computer, users, tenant, requirements, now)
        user_columns = [{} for _ in users]
        position = {id(user): i for i, user in enumerate(users)}
        for pair in outcome.pairs:
            if pair.user is not None:
                user_columns[position[id(pair.user)]] = {
                    "compliance_status": pair.compliance_status, "registration_state": pair.registration_state,
                    "failed_rules": list(pair.failed_codes), "evaluated_at": now,
                }
        derived.append(({
            "inventory_state": outcome.inventory_state, "compliance_status": outcome.compliance_status,
            "registration_state": outcome.registration_state, "failed_rules": list(outcome.failed_codes),
            "evaluated_at": now,
        }, user_columns))
    return derived


def _slices(result, tenant_id, computer_ids, slice_size):
    """Yield (computer rows, user rows) slice by slice, by ascending ID."""
    computers_qs = Computer.objects.filter(tenant_id=tenant_id).annotate(**STORED).order_by("id")
    users_qs = UserAccount.objects.filter(computer__tenant_id=tenant_id).annotate(**STORED).order_by()
    if computer_ids is not None:
        for chunk in _chunks(sorted(set(computer_ids))):
            computers = [ComputerRow._make(row)
                         for row in select_rows(computers_qs.filter(id__in=chunk), COMPUTER_FIELDS, named=False)]
            users = [UserRow._make(row)
                     for row in select_rows(users_qs.filter(computer_id__in=chunk), USER_FIELDS, named=False)]
            result.queries += 2
            yield computers, users
        return
    last = 0
    while True:
        computers = [ComputerRow._make(row)
                     for row in select_rows(computers_qs.filter(id__gt=last)[:slice_size], COMPUTER_FIELDS,
                                            named=False)]
        result.queries += 1
        if not computers:
            return
        first, last = computers[0].id, computers[-1].id
        users = [UserRow._make(row) for row in select_rows(
            users_qs.filter(computer_id__gte=first, computer_id__lte=last), USER_FIELDS, named=False
        )]
        result.queries += 1
        yield computers, users
        if len(computers) < slice_size:
            return


def _evaluate_slice(result, computers, users, tenant, requirements, now):
    """Evaluate rows; returns the changed results grouped by value: ({key: [id]}, {key: [(id, computer id)]})."""
    users_by_computer = defaultdict(list)
    for user in users:
        users_by_computer[user.computer_id].append(user)
    computer_groups = defaultdict(list)  # (state, status, registration, codes) -> [id]
    user_groups = defaultdict(list)  # (status, registration, codes) -> [(id, computer id)]
    json_text = _JsonText()
    for computer in computers:
        outcome = evaluate_computer(computer, users_by_computer.get(computer.id), tenant, requirements, now)
        codes = tuple(outcome.failed_codes)
        result.computers += 1
        if outcome.compliance_status == COMPLIANT:
            result.compliant += 1
        else:
            result.not_compliant += 1
        if outcome.inventory_state == UNRESPONSIVE:
            result.unresponsive += 1
        if (
            computer.never_evaluated
            or computer.inventory_state != outcome.inventory_state
            or computer.compliance_status != outcome.compliance_status
            or computer.registration_state != outcome.registration_state
            or computer.failed_text != json_text[codes]
        ):
            key = (outcome.inventory_state, outcome.compliance_status, outcome.registration_state, codes)
            computer_groups[key].append(computer.id)
        for pair in outcome.pairs:
            user = pair.user
            if user is None:
                continue
            result.users += 1
            user_codes = tuple(pair.failed_codes)
            if (
                user.never_evaluated
                or user.compliance_status != pair.compliance_status
                or user.registration_state != pair.registration_state
                or user.failed_text != json_text[user_codes]
            ):
                user_groups[(pair.compliance_status, pair.registration_state, user_codes)].append(
                    (user.id, computer.id)
                )
    return computer_groups, user_groups


def _write(result, computer_groups, user_groups, tenant_id, computer_ids, started, now):
    """Store the changed results of one slice in one transaction.

    A Mac whose inventory was written after the run began is left to its writer (the importer
    re-evaluates what it commits), so a slow tenant-wide run never overwrites a newer result.
    """
    ids = set(computer_ids)
    recent = Computer.objects.filter(
        tenant_id=tenant_id, id__gte=min(ids), id__lte=max(ids), updated_at__gt=started
    ).values_list("id", flat=True)
    skipped = {pk for pk in recent if pk in ids}
    result.queries += 1
    computer_groups = {key: [pk for pk in ids if pk not in skipped] for key, ids in computer_groups.items()}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            written = _write_postgresql(result, computer_groups, user_groups, skipped, started, now)
        else:
            written = _write_grouped(result, computer_groups, user_groups, skipped, started, now)
    result.changed_computer_ids.extend(written)
    result.computers_changed += len(written)
    result.skipped_concurrent += len(skipped)


def _write_grouped(result, computer_groups, user_groups, skipped, started, now):
    """Portable: one ORM UPDATE per distinct result and chunk of rows (cheap on an in-process SQLite)."""
    written = []
    for (state, status, registration, codes), ids in computer_groups.items():
        for chunk in _chunks(ids):
            count = Computer.objects.filter(id__in=chunk, updated_at__lte=started).update(
                inventory_state=state, compliance_status=status, registration_state=registration,
                failed_rules=list(codes), evaluated_at=now,
            )
            result.queries += 1
            if count < len(chunk):  # written in the moment between the check and the update
                late = set(Computer.objects.filter(id__in=chunk, updated_at__gt=started).values_list("id", flat=True))
                result.queries += 1
                skipped |= late
                chunk = [pk for pk in chunk if pk not in late]
            written.extend(chunk)
    for (status, registration, codes), entries in user_groups.items():
        ids = [pk for pk, computer_id in entries if computer_id not in skipped]
        for chunk in _chunks(ids):
            result.users_changed += UserAccount.objects.filter(id__in=chunk).update(
                compliance_status=status, registration_state=registration, failed_rules=list(codes),
                evaluated_at=now,
            )
            result.queries += 1
    return written


# PostgreSQL: each row's values as arrays, unnested and joined, so one statement writes thousands of
# rows whatever their results (a round trip per distinct result costs more than the rows on a busy host).
# "id = ANY(ids)" repeats the join key so the planner reads the rows by primary key instead of
# hashing the whole table for every statement.
_PG_COMPUTERS = """
    UPDATE {table} AS c SET inventory_state = v.state, compliance_status = v.status,
        registration_state = v.registration, failed_rules = v.codes::jsonb, evaluated_at = %s
    FROM unnest(%s::bigint[], %s::smallint[], %s::text[], %s::text[], %s::text[])
        AS v(id, state, status, registration, codes)
    WHERE c.id = v.id AND c.id = ANY(%s::bigint[]) AND c.updated_at <= %s
    RETURNING c.id
"""
_PG_USERS = """
    UPDATE {table} AS u SET compliance_status = v.status, registration_state = v.registration,
        failed_rules = v.codes::jsonb, evaluated_at = %s
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, status, registration, codes)
    WHERE u.id = v.id AND u.id = ANY(%s::bigint[])
"""
PG_ROWS_PER_STATEMENT = 10_000


def _columns(rows):
    """Rows -> one list per column (the arrays unnest() takes)."""
    return [list(column) for column in zip(*rows, strict=True)]


def _write_postgresql(result, computer_groups, user_groups, skipped, started, now):
    json_text = _JsonText()
    rows = [(pk, state, status, registration, json_text[codes])
            for (state, status, registration, codes), ids in computer_groups.items() for pk in ids]
    written = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, PG_ROWS_PER_STATEMENT):
            columns = _columns(chunk)
            cursor.execute(_PG_COMPUTERS.format(table=Computer._meta.db_table), [now, *columns, columns[0], started])
            done = [row[0] for row in cursor.fetchall()]
            result.queries += 1
            if len(done) < len(chunk):  # written in the moment between the check and the update
                skipped.update({row[0] for row in chunk} - set(done))
            written.extend(done)
        rows = [(pk, status, registration, json_text[codes])
                for (status, registration, codes), entries in user_groups.items()
                for pk, computer_id in entries if computer_id not in skipped]
        for chunk in _chunks(rows, PG_ROWS_PER_STATEMENT):
            columns = _columns(chunk)
            cursor.execute(_PG_USERS.format(table=UserAccount._meta.db_table), [now, *columns, columns[0]])
            result.users_changed += cursor.rowcount
            result.queries += 1
    return written
