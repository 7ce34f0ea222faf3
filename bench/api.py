"""Benchmark the REST API on one tenant of N Macs (2 users each): list pages, the summary, the CSV export.

    .venv/bin/python bench/api.py [--macs 100000] [--pg-url postgres://postgres@127.0.0.1:5432] [--keep]

Creates the PostgreSQL database ``bench_api`` (dropped and re-created unless ``--keep`` finds it
seeded), seeds the fleet with the same generator as bench/evaluate.py, evaluates it for real
(compliance.evaluation), stores 90 daily snapshots, and then calls the API in this process through
Django's test client with a knox token (full middleware, authentication, scoping, throttling
bucket, serialization; no network):

- list: the first page of 100 computers, 100 pages followed by ``next``, and a filtered page
  (``compliance=notCompliant&smart_group=registered``); p50 / p95 / max and queries per request;
- summary: ``/api/v1/reports/compliance/?tenant=bench``; p50 / p95 and queries;
- CSV: ``/api/v1/reports/compliance.csv`` streamed to the end, for the whole fleet and for about a
  tenth of it: rows/s, and the peak of Python allocations while streaming (tracemalloc), which
  must not grow with the number of rows.

The host's load average is printed: on a shared machine the figures are upper bounds.
"""

import argparse
import datetime
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database(pg_url, keep):
    import psycopg

    with psycopg.connect(pg_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bench_api'").fetchone()
        if not (keep and exists):
            conn.execute("DROP DATABASE IF EXISTS bench_api")
            conn.execute("CREATE DATABASE bench_api")
    return pg_url.rstrip("/") + "/bench_api"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def timed_get(client, url, samples):
    from django.db import connection, reset_queries

    times, queries, response = [], [], None
    for _ in range(samples):
        reset_queries()
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        if response.streaming:
            for _chunk in response.streaming_content:
                pass
        times.append(((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000))
        queries.append(len(connection.queries))
        assert response.status_code == 200, (url, response.status_code)
    return times, queries, response


def report(label, times, queries):
    wall = [w for w, _ in times]
    cpu = [c for _, c in times]
    print("%-40s n=%-4d p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (Python CPU p50 %5.1f ms)  queries %s" % (
        label, len(wall), statistics.median(wall), percentile(wall, 95), max(wall), statistics.median(cpu),
        "/".join(str(q) for q in sorted(set(queries)))))


def stream_csv(client, url):
    import gc

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200 and response.streaming
    rows, size = -1, 0
    for chunk in response.streaming_content:
        rows += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rows, size, elapsed, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--macs", type=int, default=100_000)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--keep", action="store_true", help="reuse bench_api when it is already seeded")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database(args.pg_url, args.keep)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["API_THROTTLE_TOKEN"] = "1000000/min"  # measure the API, not the throttle
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from knox.models import AuthToken

    from bench.evaluate import seed
    from compliance.evaluation import evaluate_tenant
    from compliance.models import ComplianceDailySnapshot
    from compliance.reports import take_snapshots
    from devices.models import Computer
    from portal.models import Tenant
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0, interactive=False)
    now = timezone.now()
    tenant = Tenant.objects.filter(slug="bench").first()
    if tenant is None or Computer.objects.filter(tenant=tenant).count() != args.macs:
        started = time.perf_counter()
        tenant = seed(args.macs, now)
        evaluate_tenant(tenant.pk, now=now)
        for day in range(89, -1, -1):
            take_snapshots([tenant.pk], now=now - datetime.timedelta(days=day))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print("seeded and evaluated %d Macs, 90 snapshots in %.1f s" % (args.macs, time.perf_counter() - started))
    user = UserFactory(username="bench-msp-%d" % time.time_ns(), is_superuser=True)
    _, token = AuthToken.objects.create(user=user)
    client = Client(HTTP_AUTHORIZATION="Token " + token)
    settings.DEBUG = True  # count queries (after setup: DEBUG keeps every query in memory)

    print("PostgreSQL %s, %d Macs in one tenant (%d not compliant), %d snapshots; load average %.1f" % (
        connection.cursor().connection.info.server_version, Computer.objects.filter(tenant=tenant).count(),
        Computer.objects.filter(tenant=tenant, compliance_status="notCompliant").count(),
        ComplianceDailySnapshot.objects.filter(tenant=tenant).count(), os.getloadavg()[0]))

    import gc

    gc.collect()
    gc.freeze()  # as a forking server does after start-up: the set-up objects are not rescanned
    timed_get(client, "/api/v1/computers/?page_size=100", 5)  # warm up
    report("list: first page of 100", *timed_get(client, "/api/v1/computers/?page_size=100", args.samples)[:2])

    times, queries, url = [], [], "/api/v1/computers/?page_size=100"
    for _ in range(args.samples):
        t, q, response = timed_get(client, url, 1)
        times += t
        queries += q
        url = response.json()["next"]
    report("list: %d pages following next" % args.samples, times, queries)
    report("list: filtered page of 100", *timed_get(
        client, "/api/v1/computers/?page_size=100&compliance=notCompliant&smart_group=registered", args.samples)[:2])
    report("list: search by serial number", *timed_get(
        client, "/api/v1/computers/?search=C020012345", args.samples // 2)[:2])
    report("summary: reports/compliance?tenant=bench", *timed_get(
        client, "/api/v1/reports/compliance/?tenant=bench", args.samples // 2)[:2])

    settings.DEBUG = False  # the CSV: no query log growing in memory
    for label, url in [
        ("CSV: whole fleet", "/api/v1/reports/compliance.csv?tenant=bench"),
        ("CSV: one tenth (os_version_max=13.6.9)", "/api/v1/reports/compliance.csv?os_version_max=13.6.9"),
    ]:
        rows, size, elapsed, peak = stream_csv(client, url)
        print("%-40s %7d rows  %6.1f MB  %6.1f s  %8.0f rows/s  peak Python allocations %.1f MB" % (
            label, rows, size / 1e6, elapsed, rows / elapsed, peak / 1e6))
    AuthToken.objects.filter(user=user).delete()
    user.delete()


if __name__ == "__main__":
    main()
