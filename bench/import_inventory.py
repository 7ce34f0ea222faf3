"""Benchmark: import N Jamf Pro records (2 local users each, every section) into a fresh database.

    .venv/bin/python bench/import_inventory.py --n 20000 [--database-url postgres://postgres@127.0.0.1:5432/bench]

Writes the records to a page file (not timed), migrates a fresh database, then times
``manage.py import_inventory`` in a child process twice (first import: all created; second: all
unchanged) and reports computers per second and the child's peak memory (max RSS). The command reads and maps
the records in a reader process it forks (devices/importer.py): the CPU figures include it, and its peak memory
is printed beside the importer's.

In the same run it measures the floor for the same work, also in child processes:

- **parse**: reading the same page file with the standard library's ``json.load`` (no mapping);
- **write**: the computer and user rows the first import wrote, copied into twin tables with the
  same columns and indexes (PostgreSQL: ``CREATE TABLE … (LIKE … INCLUDING ALL)`` and ``COPY …
  FROM STDIN``; SQLite: the same ``CREATE TABLE`` / ``CREATE INDEX`` statements and one
  ``executemany`` INSERT, its fastest bulk path). The rows are read out before the clock starts;
  the commit is timed.

floor = parse + write, and the ratio printed is floor / import (100 % would be the import running
as fast as parsing plus writing its own rows). Each is given in wall-clock seconds and in CPU seconds
(the child's own plus, on PostgreSQL, its database backend's, read from /proc): on a shared machine
the CPU ratio moves much less than the wall-clock one.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, loadavg  # noqa: E402

# CPU seconds of this process and of its PostgreSQL backend (read from /proc: the database runs on this machine).
# CPU time is inflated much less than wall time when other work shares the cores, so the script prints both ratios.
CPU = """
import os
def backend_pid():
    from django.db import connection
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
def cpu(pid=None):
    from bench.common import process_cpu
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system  # the import's reader process too
    return total + (process_cpu(pid) if pid else 0)
"""

CHILD = CPU + """
import resource, sys, time, django
django.setup()
from django.core.management import call_command
from portal.models import Tenant
Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
pid = backend_pid()
c, t = cpu(pid), time.perf_counter()
call_command("import_inventory", "bench", sys.argv[1], "--no-progress")
elapsed = time.perf_counter() - t
print("RESULT", elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, cpu(pid) - c,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

PARSE = CPU + """
import json, resource, sys, time
c, t = cpu(), time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    n = len(json.load(fh)["results"])
print("RESULT", time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n, cpu() - c)
"""

WRITE = CPU + r'''
import io, re, sys, time, django
django.setup()
pid = backend_pid()
from django.db import connection, transaction
from devices.models import Computer, UserAccount

TABLES = [(Computer._meta.db_table, "tenant_id IN (SELECT id FROM portal_tenant WHERE slug = 'bench')"),
          (UserAccount._meta.db_table, "computer_id IN (SELECT c.id FROM devices_computer c JOIN portal_tenant t "
                                       "ON t.id = c.tenant_id WHERE t.slug = 'bench')")]
rows = 0
with connection.cursor() as cursor:
    raw = cursor.connection
    if connection.vendor == "postgresql":
        data = {}
        for table, where in TABLES:
            twin = "bench_twin_" + table
            cursor.execute("DROP TABLE IF EXISTS %s" % twin)
            cursor.execute("CREATE TABLE %s (LIKE %s INCLUDING ALL)" % (twin, table))
            buffer = io.BytesIO()
            with raw.cursor().copy("COPY (SELECT * FROM %s WHERE %s) TO STDOUT" % (table, where)) as copy:
                for block in copy:
                    buffer.write(block)
            data[twin] = buffer.getvalue()
        c, t = cpu(pid), time.perf_counter()
        with transaction.atomic():
            for twin, body in data.items():
                with raw.cursor().copy("COPY %s FROM STDIN" % twin) as copy:
                    for start in range(0, len(body), 1 << 20):
                        copy.write(body[start:start + (1 << 20)])
        elapsed, used = time.perf_counter() - t, cpu(pid) - c
        rows = sum(body.count(b"\n") for body in data.values())
        for twin in data:
            cursor.execute("DROP TABLE %s" % twin)
    else:
        data = {}
        for table, where in TABLES:
            twin = "bench_twin_" + table
            cursor.execute("DROP TABLE IF EXISTS %s" % twin)
            statements = [sql for (sql,) in cursor.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL ORDER BY type DESC",
                [table]).fetchall()]
            for sql in statements:  # the table first ("table" > "index"), then its indexes, renamed
                sql = re.sub(r'INDEX "(\w+)"', lambda m: 'INDEX "twin_%s"' % m.group(1), sql)
                sql = sql.replace('"%s"' % table, '"%s"' % twin)
                sql = re.sub(r"REFERENCES \"?\w+\"? \(\"?id\"?\)( DEFERRABLE INITIALLY DEFERRED)?", "", sql)
                cursor.execute(sql)
            columns = [c[1] for c in cursor.execute("PRAGMA table_info(%s)" % table).fetchall()]
            cursor.execute("SELECT %s FROM %s WHERE %s" % (", ".join(columns), table, where))
            data[twin] = (columns, cursor.fetchall())
        c, t = cpu(pid), time.perf_counter()
        with transaction.atomic():
            for twin, (columns, values) in data.items():
                cursor.executemany("INSERT INTO %s (%s) VALUES (%s)" % (
                    twin, ", ".join(columns), ", ".join(["%s"] * len(columns))), values)
        elapsed, used = time.perf_counter() - t, cpu(pid) - c
        rows = sum(len(values) for _, values in data.values())
        for twin in data:
            cursor.execute("DROP TABLE %s" % twin)
print("RESULT", elapsed, rows, used)
'''


def write_records(path, n):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from devices.jamf.samples import make_record

    with open(path, "w") as fh:
        fh.write('{"totalCount": %d, "results": [' % n)
        for i in range(n):
            if i:
                fh.write(",")
            fh.write(json.dumps(make_record(i + 1, "bench", users=2)))
        fh.write("]}")


def child(script, env, *args):
    """Run a child script; returns the fields of its RESULT line (and the whole output)."""
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    out = run.stdout
    return next(line.split()[1:] for line in out.splitlines() if line.startswith("RESULT")), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    url = args.database_url or "sqlite:///%s" % (work / "bench.sqlite3")
    env = dict(os.environ, DATABASE_URL=url, PORTAL_VAR_DIR=str(work / "var"), LOG_LEVEL="WARNING", DEBUG="false",
               DJANGO_SETTINGS_MODULE="portal.settings")
    page = work / "page.json"
    t = time.perf_counter()
    write_records(page, args.n)
    print("generated %d records (%.0f MB) in %.1fs" % (args.n, page.stat().st_size / 1e6, time.perf_counter() - t))
    fresh_database(env, url)
    load_before = loadavg()
    print("database: %s   load average before: %s" % ("PostgreSQL" if url.startswith("postgres") else "SQLite",
                                                      load_before))
    times = {}
    for label in ("first import (created)", "second import (unchanged)"):
        (elapsed, rss, used, reader_rss), out = child(CHILD, env, str(page))
        summary = [line for line in out.splitlines() if line.startswith("Created")]
        elapsed = float(elapsed)
        times[label] = (elapsed, float(used))
        print("%-26s %7.2fs  %7.0f computers/s  CPU %.2fs  peak RSS %4.0f MB (reader process %.0f MB)  %s" % (
            label, elapsed, args.n / elapsed, float(used), int(rss) / 1024, int(reader_rss) / 1024,
            summary[0] if summary else ""))
    (parse_s, parse_rss, parsed, parse_cpu), _ = child(PARSE, env, str(page))
    (write_s, rows, write_cpu), _ = child(WRITE, env)
    parse_s, write_s, parse_cpu, write_cpu = map(float, (parse_s, write_s, parse_cpu, write_cpu))
    floor, floor_cpu = parse_s + write_s, parse_cpu + write_cpu
    (first, first_cpu), (second, second_cpu) = times.values()
    print("floor: parse %.2fs (json.load, %s records, CPU %.2fs, peak RSS %.0f MB) + write %.2fs (%s rows, %s, "
          "CPU %.2fs) = %.2fs (%.0f records/s)" % (
              parse_s, parsed, parse_cpu, int(parse_rss) / 1024, write_s, rows,
              "COPY" if url.startswith("postgres") else "executemany", write_cpu, floor, args.n / floor))
    print("RATIO first import: floor / import = %.2f / %.2f s = %.0f %% (CPU: %.2f / %.2f s = %.0f %%)" % (
        floor, first, 100 * floor / first, floor_cpu, first_cpu, 100 * floor_cpu / first_cpu))
    print("RATIO second import: parse / import = %.2f / %.2f s = %.0f %% (CPU: %.2f / %.2f s = %.0f %%)" % (
        parse_s, second, 100 * parse_s / second, parse_cpu, second_cpu, 100 * parse_cpu / second_cpu))
    print("load average before: %s   after: %s" % (load_before, loadavg()))


if __name__ == "__main__":
    main()
