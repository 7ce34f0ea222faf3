"""Benchmark: import N Jamf Pro records (2 local users each, every section) into a fresh database.

    .venv/bin/python bench/import_inventory.py --n 10000 [--database-url postgres://postgres@127.0.0.1:5432/bench]

Writes the records to a page file (not timed), migrates a fresh database, then times
``manage.py import_inventory`` in a child process twice (first import: all created; second: all
unchanged) and reports computers per second and the child's peak memory (max RSS).
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

from bench.common import fresh_database  # noqa: E402

CHILD = """
import resource, sys, time, django
django.setup()
from django.core.management import call_command
from portal.models import Tenant
Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
t = time.perf_counter()
call_command("import_inventory", "bench", sys.argv[1], "--no-progress")
elapsed = time.perf_counter() - t
print("RESULT", elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000)
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
    for label in ("first import (created)", "second import (unchanged)"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(page)], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        summary = [line for line in out.splitlines() if line.startswith("Created")]
        elapsed, rss = next(line.split()[1:] for line in out.splitlines() if line.startswith("RESULT"))
        elapsed = float(elapsed)
        print("%-26s %7.1fs  %7.0f computers/s  peak RSS %4.0f MB  %s" % (
            label, elapsed, args.n / elapsed, int(rss) / 1024, summary[0] if summary else ""))


if __name__ == "__main__":
    main()
