"""Benchmark: the registration landing page under a crowd, next to a bare "ok" view, in one run.

    .venv/bin/python bench/landing.py [--duration 10] [--concurrency 16] [--database-url postgres://...]

Sets up a fresh database (SQLite in a temporary folder by default; with --database-url a
PostgreSQL database of that name is dropped and created), one tenant with the registration page,
collects static files, and starts gunicorn (2 sync workers) on loopback in production settings.
Then an asyncio load generator (in this process, so it shares the 2 cores with the server) sends
GET requests for a fixed time to ``/healthz`` (a bare Django view returning "ok") and to
``/r/bench/`` (the registration page), in alternating rounds, and reports requests per second and
latency percentiles for each. Every response is checked (status and a marker in the body); a
request that fails is counted, not retried. Traffic goes to 127.0.0.1 only, and every loop is
bounded in time.
"""

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

SETUP = """
import django
django.setup()
from portal.models import Tenant
Tenant.objects.update_or_create(slug="bench", defaults={
    "name": "Bench Corp",
    "landing_page": "registration",
    "jamf_enrollment_url": "https://bench.jamfcloud.example/enroll",
    "self_service_registration_url": "jamfselfservice://content?entity=policy&id=12&action=view",
    "support_contact": "IT help desk, help@bench.example, +1 555 0100",
    "logo_url": "https://cdn.bench.example/logo.png",
})
"""

TARGETS = [
    # name, path, expected status, a marker the body must contain
    ("bare view (/healthz)", "/healthz", 200, b"ok"),
    ("registration page (/r/bench/)", "/r/bench/", 200, b"AccountNotOnboarded"),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(env, url):
    common.fresh_database(env, url)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True)


def server_env(var_dir, port, database_url):
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        PORTAL_ENV="production",
        PORTAL_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(50),
        PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        # https as production requires (portal/checks.py); the benchmark itself talks plain HTTP on loopback.
        PORTAL_BASE_URL="https://127.0.0.1:%d" % port,
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    env.pop("REDIS_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    if not (database_url or "").startswith("postgres"):
        env["PORTAL_SINGLE_MACHINE"] = "true"  # SQLite in production settings: the documented opt-out
    return env


async def one_request(port, request, expected_status, marker):
    """Open a connection, send one GET, read to EOF (gunicorn's sync worker closes it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        body = await reader.read()
    finally:
        writer.close()
    status = int(body[9:12]) if body[:5] == b"HTTP/" else 0
    return status == expected_status and marker in body


async def load(port, path, expected_status, marker, concurrency, duration):
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
    latencies, errors = [], 0
    deadline = time.perf_counter() + duration

    async def worker():
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = await asyncio.wait_for(one_request(port, request, expected_status, marker), 10)
            except (TimeoutError, OSError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per target and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over the targets")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL (dropped and created); default SQLite")
    args = parser.parse_args()
    args.duration = min(args.duration, 60.0)  # bounded by design

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-landing-") as tmp:
        env = server_env(Path(tmp), port, args.database_url)
        fresh_database(env, args.database_url)
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "portal.wsgi:application",
                "--workers",
                str(args.workers),
                "--worker-class",
                "sync",
                "--bind",
                "127.0.0.1:%d" % port,
                "--backlog",
                "2048",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            common.wait_for_port(port, what="gunicorn")
            results = {name: ([], 0, 0.0) for name, *_ in TARGETS}
            for _, path, status, marker in TARGETS:  # warm up both workers and the tenant cache
                asyncio.run(load(port, path, status, marker, args.concurrency, 1.0))
            for _ in range(args.rounds):
                for name, path, status, marker in TARGETS:
                    latencies, errors, elapsed = asyncio.run(
                        load(port, path, status, marker, args.concurrency, args.duration)
                    )
                    total = results[name]
                    results[name] = (total[0] + latencies, total[1] + errors, total[2] + elapsed)
        finally:
            server.terminate()
            server.wait(timeout=30)

    db = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(
        "gunicorn %d sync workers, %s, concurrency %d, %d x %.0f s per target, %d cores"
        % (args.workers, db, args.concurrency, args.rounds, args.duration, os.cpu_count())
    )
    print("| target | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    rates = {}
    for name, (latencies, errors, elapsed) in results.items():
        latencies.sort()
        rates[name] = len(latencies) / elapsed if elapsed else 0.0
        print(
            "| %s | %d | %d | %.0f | %.1f | %.1f |"
            % (
                name,
                len(latencies),
                errors,
                rates[name],
                statistics.median(latencies) * 1000 if latencies else float("nan"),
                percentile(latencies, 0.99) * 1000,
            )
        )
    bare, page = (rates[name] for name, *_ in TARGETS)
    print("registration page / bare view: %.0f%%" % (100 * page / bare if bare else 0))


if __name__ == "__main__":
    main()
