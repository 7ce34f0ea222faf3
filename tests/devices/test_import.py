import copy
import datetime
import gc
import io
import json
import os
import sys

import pytest
from django.core.management import CommandError, call_command

from devices.importer import import_records, iter_records
from devices.jamf.samples import make_record
from devices.models import Computer, UserAccount
from tests.devices.test_mapping import V3_RECORD

pytestmark = pytest.mark.django_db


def run_import(tenant, payload, **kwargs):
    stream = io.BytesIO(json.dumps(payload).encode())
    return import_records(tenant, iter_records(stream), **kwargs)


@pytest.mark.parametrize("shape", ["record", "list", "page"])
def test_every_input_shape_imports(tenant_a, shape):
    records = [make_record(n, "t") for n in range(1, 4)]
    payload = {"record": records[0], "list": records, "page": {"totalCount": 3, "results": records}}[shape]
    result = run_import(tenant_a, payload)
    assert result.created == (1 if shape == "record" else 3)
    assert Computer.objects.filter(tenant=tenant_a).count() == result.created


def test_reimport_is_idempotent(tenant_a):
    page = {"totalCount": 30, "results": [make_record(n, "t", users=2) for n in range(30)]}
    first = run_import(tenant_a, page, batch_size=7)
    assert first.summary() == {"created": 30, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 0}
    users = set(UserAccount.objects.values_list("id", "computer_id", "username"))
    second = run_import(tenant_a, page, batch_size=7)
    assert second.summary() == {"created": 0, "updated": 0, "unchanged": 30, "stale": 0, "rejected": 0}
    assert set(UserAccount.objects.values_list("id", "computer_id", "username")) == users
    assert Computer.objects.count() == 30


def test_an_update_changes_values_and_keeps_user_rows(tenant_a):
    run_import(tenant_a, V3_RECORD)
    jdoe_id = UserAccount.objects.get(username="jdoe").id
    changed = copy.deepcopy(V3_RECORD)
    changed["general"]["reportDate"] = "2024-06-08T00:00:00Z"
    changed["security"]["sipStatus"] = "DISABLED"
    changed["localUserAccounts"] = changed["localUserAccounts"][:1]  # "admin" removed
    result = run_import(tenant_a, changed)
    assert result.updated == 1
    computer = Computer.objects.get()
    assert computer.sip == "DISABLED"
    assert list(computer.user_accounts.values_list("id", "username")) == [(jdoe_id, "jdoe")]


def test_an_older_report_date_does_not_overwrite(tenant_a):
    run_import(tenant_a, V3_RECORD)
    older = copy.deepcopy(V3_RECORD)
    older["general"]["reportDate"] = "2024-01-01T00:00:00Z"
    older["hardware"]["serialNumber"] = "OLDSERIAL"
    result = run_import(tenant_a, older)
    assert result.stale == 1
    assert Computer.objects.get().serial_number == "J01A234MFJA5"


def test_partial_record_keeps_other_sections(tenant_a):
    run_import(tenant_a, V3_RECORD)
    partial = {"id": "140", "udid": V3_RECORD["udid"], "general": dict(V3_RECORD["general"], name="Renamed",
                                                                      reportDate="2024-06-09T00:00:00Z")}
    assert run_import(tenant_a, partial).updated == 1
    computer = Computer.objects.get()
    assert computer.name == "Renamed"
    assert computer.serial_number == "J01A234MFJA5"
    assert computer.user_accounts.count() == 2


def test_bad_records_are_rejected_and_the_rest_imported(tenant_a):
    records = [make_record(n, "t") for n in range(5)]
    records[1] = {"udid": "no-id"}
    records[3]["hardware"]["coreCount"] = "eight"
    result = run_import(tenant_a, records, batch_size=2)
    assert result.created == 3
    assert [(r.index, r.reason.split(":")[0]) for r in result.rejected] == [(1, "id"), (3, "hardware.coreCount")]
    assert sorted(Computer.objects.values_list("jamf_id", flat=True)) == ["0", "2", "4"]


def test_a_udid_owned_by_another_computer_is_rejected_without_harm(tenant_a):
    run_import(tenant_a, [make_record(1, "t")])
    clash = make_record(2, "t")
    clash["udid"] = Computer.objects.get().udid
    result = run_import(tenant_a, [clash, make_record(3, "t")])
    assert result.created == 1
    assert result.rejected[0].index == 0
    assert "udid" in result.rejected[0].reason
    assert Computer.objects.count() == 2


def test_a_failing_batch_is_retried_record_by_record(tenant_a):
    # Two records in one batch claiming the same UDID: the database refuses the batch; each record
    # is then tried alone, so the first lands and the second is rejected with a reason.
    a, b, c = make_record(1, "t"), make_record(2, "t"), make_record(3, "t")
    b["udid"] = a["udid"]
    result = run_import(tenant_a, [a, b, c], batch_size=10)
    assert result.created == 2
    assert len(result.rejected) == 1 and "udid" in result.rejected[0].reason
    assert Computer.objects.count() == 2


def test_same_jamf_id_in_two_tenants_is_fine(tenant_a, tenant_b):
    run_import(tenant_a, V3_RECORD)
    run_import(tenant_b, V3_RECORD)
    assert Computer.objects.count() == 2


def test_truncated_json_keeps_what_came_before(tenant_a):
    body = json.dumps([make_record(n, "t") for n in range(5)])
    cut = body[: body.index('"id": "4"')]  # cut inside the last record
    result = import_records(tenant_a, iter_records(io.BytesIO(cut.encode())), batch_size=2)
    assert result.created == 4
    assert "not valid JSON" in result.input_error


def test_command_imports_a_page_file_and_second_run_is_unchanged(tenant_a, tmp_path):
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"totalCount": 12, "results": [make_record(n, "t") for n in range(12)]}))
    out = io.StringIO()
    call_command("import_inventory", "alpha", str(path), stdout=out)
    assert "Created 12, updated 0, unchanged 0" in out.getvalue()
    out = io.StringIO()
    call_command("import_inventory", "alpha", str(path), stdout=out)
    assert "Created 0, updated 0, unchanged 12" in out.getvalue()


def test_command_reports_rejections_with_index_field_and_problem(tenant_a, tmp_path):
    path = tmp_path / "bad.json"
    bad = make_record(2, "t")
    bad["general"]["reportDate"] = 12
    path.write_text(json.dumps([make_record(1, "t"), bad]))
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 record"):
        call_command("import_inventory", "alpha", str(path), stdout=out)
    assert "record 1 (Jamf ID 2): general.reportDate: expected an ISO 8601 date-time" in out.getvalue()
    assert Computer.objects.count() == 1


def test_command_errors_clearly(tenant_a, tmp_path):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("import_inventory", "nope", "x.json")
    with pytest.raises(CommandError, match="Cannot open"):
        call_command("import_inventory", "alpha", str(tmp_path / "missing.json"))
    empty = tmp_path / "empty.json"
    empty.write_text("  ")
    with pytest.raises(CommandError, match="empty"):
        call_command("import_inventory", "alpha", str(empty), stdout=io.StringIO())


def test_demo_data_is_rerunnable(db):
    call_command("demo_data", stdout=io.StringIO())
    call_command("demo_data", stdout=io.StringIO())
    from portal.models import Tenant

    assert Tenant.objects.count() == 3
    assert Computer.objects.count() == 200
    assert Computer.objects.exclude(entra_device_id="").exists()
    assert Computer.objects.filter(company_portal_version__isnull=True).exists()
    assert Computer.objects.filter(sip="DISABLED").exists()
    assert Computer.objects.filter(architecture="arm64").exists() and Computer.objects.filter(
        architecture="x86_64").exists()


# -- The write path (devices/bulk.py) leaves the same rows as the ORM's bulk_create did -------------------


def _reference_import(tenant, records):
    """What the importer wrote before devices/bulk.py, with the ORM: map, then bulk_create(update_conflicts)."""
    from django.utils import timezone

    from devices.importer import USER_FIELDS
    from devices.jamf.mapping import map_computer_record

    for record in records:
        item = map_computer_record(record)
        row = Computer.objects.filter(tenant=tenant, jamf_id=item.jamf_id).first()
        values = dict(item.computer)
        if "company_portal_version" in values:
            seen = row.company_portal_seen_at if row else None
            values["company_portal_seen_at"] = None if values["company_portal_version"] is None else (
                seen or timezone.now())
        obj = Computer(tenant=tenant, jamf_id=item.jamf_id, udid=item.udid, source_hash=item.source_hash, **values)
        Computer.objects.bulk_create([obj], update_conflicts=True, unique_fields=["tenant", "jamf_id"],
                                     update_fields=sorted({"udid", "source_hash", "updated_at"} | set(values)))
        pk = Computer.objects.get(tenant=tenant, jamf_id=item.jamf_id).pk
        if item.users is not None:
            names = [u["username"] for u in item.users]
            UserAccount.objects.filter(computer_id=pk).exclude(username__in=names).delete()
            UserAccount.objects.bulk_create([UserAccount(computer_id=pk, **u) for u in item.users],
                                            update_conflicts=True, unique_fields=["computer", "username"],
                                            update_fields=USER_FIELDS)


# Not compared: keys, timestamps of the write, and the evaluation results (compliance's, written on the
# importer's announcement; the reference below does not announce).
SKIP = {"id", "tenant_id", "computer_id", "created_at", "updated_at", "company_portal_seen_at", "inventory_state",
        "compliance_status", "registration_state", "failed_rules", "evaluated_at"}


def _stored(tenant):
    computers = {}
    for computer in Computer.objects.filter(tenant=tenant):
        row = {f.attname: getattr(computer, f.attname)
               for f in Computer._meta.concrete_fields if f.attname not in SKIP}
        row["portal_seen"] = computer.company_portal_seen_at is not None
        row["users"] = sorted(
            tuple((f.attname, getattr(u, f.attname))
                  for f in UserAccount._meta.concrete_fields if f.attname not in SKIP)
            for u in computer.user_accounts.all()
        )
        computers[computer.jamf_id] = row
    return computers


@pytest.mark.django_db(transaction=True)
def test_bulk_writes_leave_the_same_rows_as_the_orm(tenant_a, tenant_b):
    first = [make_record(n, "t", users=n % 4) for n in range(1, 13)]  # 0 to 3 users, every section
    second = copy.deepcopy(first)
    for n, record in enumerate(second):
        # Newer than the first import, and not in the future (a later date is stored as the time of receipt).
        record["general"]["reportDate"] = datetime.datetime.now(datetime.UTC).isoformat()
        if n % 3 == 0:  # a partial record: only some sections, which must leave the others alone
            for key in ("hardware", "security", "applications"):
                record.pop(key)
        if n % 3 == 1:
            record["localUserAccounts"] = record["localUserAccounts"][1:]  # a user leaves
            record["applications"] = []  # Company Portal removed
        if n % 3 == 2:
            record["operatingSystem"]["version"] = "15.9"
            record["localUserAccounts"].append({"username": "new", "uid": "777", "admin": True})
    second.append(make_record(99, "t", users=2))  # and a new Mac in the same batch as the updates
    for records in (first, second):
        result = run_import(tenant_a, records, batch_size=5)
        assert not result.rejected
        _reference_import(tenant_b, records)
        assert _stored(tenant_a) == _stored(tenant_b)
    assert Computer.objects.filter(tenant=tenant_a).count() == 13


def test_read_is_text_and_integer_field_by_field():
    # _Section.read's fast path gives what text() and integer() give, field by field, errors included.
    from devices.jamf.mapping import INTEGER, MappingError, _Section

    spec = (("a", "a", "text", 4), ("b", "b", "integer", None), ("c", "c", "text", None))
    samples = ["  padded  ", "toolongvalue", "", None, 12, 1.0, 2.5, True, [], {}, "17", " 18 ", "x", 2**31,
               -(2**31) + 1, 2**31 - 1]
    for a in samples:
        for b in samples:
            for c in samples[:4] + [3]:
                section = _Section({"a": a, "b": b, "c": c}, "hardware")
                try:
                    expected = {name: section.integer(key) if kind == INTEGER else section.text(key, limit)
                                for name, key, kind, limit in spec}
                except MappingError as exc:
                    with pytest.raises(MappingError) as raised:
                        section.read(spec, {})
                    assert str(raised.value) == str(exc)
                else:
                    assert section.read(spec, {}) == expected


# -- Reading and mapping run in a thread of their own while the batches are written -------------------------


def test_an_error_of_the_records_iterator_reaches_the_caller_after_the_batches_before_it(tenant_a):
    def records():
        yield from (make_record(n, "t") for n in range(1, 8))
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        import_records(tenant_a, records(), batch_size=3)
    assert Computer.objects.filter(tenant=tenant_a).count() == 6  # the two full batches read before the error


def test_a_failing_write_stops_the_reader(tenant_a, monkeypatch):
    import threading

    from devices import importer

    read = []

    def records():
        for n in range(1, 10_000):
            read.append(n)
            yield make_record(n, "t")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(importer, "_import_batch", fail)
    with pytest.raises(OSError, match="disk full"):
        import_records(tenant_a, records(), batch_size=10)
    assert len(read) < 100  # the reader stopped: at most a few batches ahead of the writer
    assert not [t for t in threading.enumerate() if t.name == "import-reader"]


def test_the_reader_process_imports_the_same_as_the_thread(tenant_a, tenant_b):
    records = [make_record(n, "t", users=n % 3) for n in range(1, 40)]
    records[7] = {"id": "bad", "udid": ""}  # refused: its MappingError comes back from the child
    by_thread = run_import(tenant_a, records, batch_size=6)
    by_process = import_records(tenant_b, iter_records(io.BytesIO(json.dumps(records).encode())), batch_size=6,
                                reader="process")
    assert by_process.summary() == by_thread.summary() == {
        "created": 38, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 1}
    assert [r.as_dict() for r in by_process.rejected] == [r.as_dict() for r in by_thread.rejected]
    assert _stored(tenant_a) == _stored(tenant_b)


def test_the_reader_process_passes_on_input_errors_and_its_own_end(tenant_a):
    body = json.dumps([make_record(n, "t") for n in range(1, 6)]).encode()[:-300]  # truncated
    result = import_records(tenant_a, iter_records(io.BytesIO(body)), batch_size=2, reader="process")
    assert result.created == 4 and "after record 3" in result.input_error

    def dies():
        yield make_record(1, "t")
        os._exit(3)

    with pytest.raises(RuntimeError, match="reader process ended unexpectedly"):
        import_records(tenant_a, dies(), batch_size=1, reader="process")


def test_the_command_reads_standard_input_in_its_reader_process(tenant_a, tmp_path, monkeypatch):
    # multiprocessing closes sys.stdin (its buffer and descriptor 0) in the child it starts, before the child runs:
    # `manage.py import_inventory alpha - < page.json` failed with "ValueError: read of closed file".
    path = tmp_path / "page.json"
    path.write_text(json.dumps([make_record(n, "t") for n in range(1, 6)]))
    with open(path) as stdin:  # a text stream over a file descriptor, as a shell's redirected standard input
        monkeypatch.setattr(sys, "stdin", stdin)
        out = io.StringIO()
        call_command("import_inventory", "alpha", "-", stdout=out)
        assert not stdin.closed
    assert "Created 5, updated 0" in out.getvalue()
    assert Computer.objects.filter(tenant=tenant_a).count() == 5


def test_overlapping_imports_put_the_collector_threshold_back():
    # Two imports of a threaded web worker overlap: A starts, B starts, A ends, B ends. B saved A's raised
    # threshold as the one to restore, and left it raised for the life of the process.
    from devices.importer import _fewer_collections

    before = gc.get_threshold()
    a, b = _fewer_collections(), _fewer_collections()
    try:
        a.__enter__()
        b.__enter__()
        assert gc.get_threshold()[0] >= 50_000
        a.__exit__(None, None, None)
        assert gc.get_threshold()[0] >= 50_000  # B still imports
        b.__exit__(None, None, None)
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)


def test_a_young_table_gets_statistics_so_existing_macs_are_looked_up_by_key(tenant_a):
    # Without statistics the planner took the table for empty and looked each Mac up through the (tenant, state)
    # index, reading every row of the tenant per Mac; with them, by the (tenant, Jamf ID) key.
    from django.db import connection

    from devices.importer import STATISTICS_AFTER

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'devices_computer'")
        assert cursor.fetchone()[0] < STATISTICS_AFTER  # a test database's table: never analyzed with rows
    run_import(tenant_a, [make_record(n, "t", users=1) for n in range(1, STATISTICS_AFTER + 101)], batch_size=250)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'devices_computer'")
        assert cursor.fetchone()[0] >= STATISTICS_AFTER
        cursor.execute("EXPLAIN SELECT id FROM devices_computer WHERE tenant_id = %s AND jamf_id = %s",
                       [tenant_a.pk, "5"])
        assert "computer_unique_tenant_jamf_id" in "\n".join(row[0] for row in cursor.fetchall())
