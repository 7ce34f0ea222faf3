"""Helpers shared by the benchmark scripts."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(env, url):
    """Drop and re-create the PostgreSQL database of ``url`` (SQLite files start empty), then migrate."""
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "%s"' % name)
            conn.execute('CREATE DATABASE "%s"' % name)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def loadavg():
    """The machine's 1-, 5- and 15-minute load averages, as text (the benchmarks print it with each figure)."""
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])
