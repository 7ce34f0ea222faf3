"""Benchmark compliance evaluation: one tenant of N Macs (2 users each) against 3 policies.

    .venv/bin/python bench/evaluate.py --db sqlite   [--macs 100000]
    .venv/bin/python bench/evaluate.py --db postgres [--macs 100000] [--pg-url postgres://postgres@127.0.0.1:5432]

Each run starts from a fresh database (SQLite under var/bench/, or the PostgreSQL database
``bench_evaluate``, dropped and re-created), seeds the fleet with bulk inserts, then times
``compliance.evaluation.evaluate_tenant``:

1. first run: every Mac and user is new, so every result is written;
2. steady state: nothing changed, nothing is written (what the hourly sweep and a no-op policy save cost);
3. after a policy change that moves about a third of the fleet.

It prints the wall-clock time, Macs per second, this process's CPU time (the rest is the database
and waiting for it) and the number of queries of each run. The host's load average is printed too:
on a shared machine the wall-clock figures are lower bounds.
"""

import argparse
import datetime
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database(kind, pg_url):
    if kind == "sqlite":
        path = ROOT / "var" / "bench" / "evaluate.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return "sqlite:///%s" % path
    import psycopg

    with psycopg.connect(pg_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_evaluate")
        conn.execute("CREATE DATABASE bench_evaluate")
    return pg_url.rstrip("/") + "/bench_evaluate"


OS = [("12.7.6", "21H1320"), ("13.6.9", "22G830"), ("13.7.1", "22H221"), ("14.6.1", "23G93"),
      ("14.7.1", "23H222"), ("14.7.1 (a)", "23H222a"), ("15.0.1", "24A348"), ("15.1", "24B83"), ("15.1.1", "24B91")]


def seed(macs, now):
    from compliance.models import CompliancePolicy
    from devices.models import Computer, UserAccount
    from portal.models import Tenant

    tenant = Tenant.objects.create(name="Bench", slug="bench", entra_tenant="bench.onmicrosoft.com")
    CompliancePolicy.objects.bulk_create([
        CompliancePolicy(tenant=tenant, name="Baseline", min_os_version="14.0", require_filevault=True,
                         require_sip=True, gatekeeper="identified_developers", require_auto_login_disabled=True),
        CompliancePolicy(tenant=tenant, name="Passwords", password_min_length=10, password_type="AlphaNumeric",
                         password_history=5, password_expiration_days=365),
        CompliancePolicy(tenant=tenant, name="Freshness", max_os_version="15.9", max_inventory_age_days=14),
    ])
    rng = random.Random(4)
    batch = 5000
    for start in range(0, macs, batch):
        computers = []
        for n in range(start, min(start + batch, macs)):
            os_version, os_build = rng.choice(OS)
            registered = rng.random() < 0.8
            portal = registered or rng.random() < 0.5
            computers.append(Computer(
                tenant=tenant, jamf_id=str(n), udid="%032X" % n, serial_number="C02%07d" % n, name="Mac %d" % n,
                # 10% silent for up to 60 h (unresponsive), 5% with an inventory up to 40 days old
                last_check_in=now - datetime.timedelta(
                    minutes=rng.randint(1, 60 * (60 if rng.random() < 0.1 else 20))
                ),
                last_inventory_update=now - datetime.timedelta(
                    hours=rng.randint(1, 24 * (40 if rng.random() < 0.05 else 10))
                ),
                os_name="macOS", os_version=os_version, os_build=os_build,
                filevault_state="ENCRYPTED" if rng.random() < 0.92 else "NOT_ENCRYPTED",
                sip="ENABLED" if rng.random() < 0.96 else "DISABLED",
                gatekeeper=rng.choice(["APP_STORE_AND_IDENTIFIED_DEVELOPERS"] * 6 + ["APP_STORE", "DISABLED"]),
                auto_login_disabled=rng.random() > 0.05,
                entra_device_id="%036d" % n if registered else "",
                company_portal_version="5.2411.2" if portal else None,
                company_portal_seen_at=now - datetime.timedelta(days=rng.randint(0, 30)) if portal else None,
            ))
        Computer.objects.bulk_create(computers, batch_size=1000)
        users = []
        for computer in Computer.objects.filter(tenant=tenant, jamf_id__in=[c.jamf_id for c in computers]).values(
                "id", "entra_device_id"):
            for i in range(2):
                users.append(UserAccount(
                    computer_id=computer["id"], username="user%d" % i,
                    entra_device_id=computer["entra_device_id"] if i == 0 else "",
                    entra_user_id="u%d" % computer["id"] if (i == 0 and computer["entra_device_id"]) else "",
                    password_min_length=rng.choice([None, 8, 10, 12]),
                    password_type=rng.choice([None, "Simple", "AlphaNumeric", "AlphaNumeric"]),
                    password_history_depth=rng.choice([None, 5, 10]),
                    password_max_age_days=rng.choice([None, 90, 365]),
                ))
        UserAccount.objects.bulk_create(users, batch_size=1000)
    return tenant


def timed(label, macs, func):
    started, cpu = time.perf_counter(), time.process_time()
    result = func()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    queries = result.queries  # counted by evaluate_tenant itself (DEBUG stays off, as in production)
    print("%-34s %7.2f s  %7.0f Macs/s  (Python CPU %5.2f s)  %4d queries  changed: %d Macs, %d users" % (
        label, elapsed, macs / elapsed, cpu, queries, result.computers_changed, result.users_changed))
    return elapsed, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--macs", type=int, default=100_000)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database(args.db, args.pg_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from compliance.evaluation import evaluate_tenant
    from compliance.models import CompliancePolicy

    call_command("migrate", verbosity=0, interactive=False)
    now = timezone.now()
    started = time.perf_counter()
    tenant = seed(args.macs, now)
    print("%s (%s): seeded %d Macs, %d users, 3 policies in %.1f s; load average %.1f" % (
        connection.vendor, connection.settings_dict["NAME"], args.macs, 2 * args.macs, time.perf_counter() - started,
        os.getloadavg()[0]))

    timed("first run (all results written)", args.macs, lambda: evaluate_tenant(tenant.pk, now=now))
    timed("steady state (nothing changed)", args.macs, lambda: evaluate_tenant(tenant.pk, now=now))
    CompliancePolicy.objects.filter(tenant=tenant, name="Baseline").update(min_os_version="14.7")
    timed("after a policy change", args.macs, lambda: evaluate_tenant(tenant.pk, now=now))
    print("peak RSS of the process (seeding included): %d MB" % (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024))


if __name__ == "__main__":
    main()
