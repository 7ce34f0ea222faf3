"""Production mode refuses to start without what it needs, and passes check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "x7#Kq!" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "portal.example.com",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "DATABASE_URL": "postgres://portal@db.example.com:5432/portal",  # check never connects
}


def run_manage(env, *args, tmp_path):
    full = {k: v for k, v in os.environ.items() if k not in PROD_ENV and k != "DJANGO_SETTINGS_MODULE"}
    full.update(env, PORTAL_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120
    )


def test_production_passes_check_deploy(tmp_path):
    result = run_manage(PROD_ENV, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_production_refuses_to_start_without_each_requirement(tmp_path):
    for name in ("SECRET_KEY", "PORTAL_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "PORTAL_BASE_URL"):
        env = {k: v for k, v in PROD_ENV.items() if k != name}
        result = run_manage(env, "check", tmp_path=tmp_path)
        assert result.returncode != 0
        assert "%s must be set when PORTAL_ENV=production" % name in result.stderr


def test_production_refuses_debug(tmp_path):
    result = run_manage(dict(PROD_ENV, DEBUG="true"), "check", tmp_path=tmp_path)
    assert result.returncode != 0 and "DEBUG must be off" in result.stderr


def test_embedded_mode_generates_its_keys_once(tmp_path):
    env = {"DATABASE_URL": "sqlite:///:memory:"}
    assert run_manage(env, "check", tmp_path=tmp_path).returncode == 0
    key = (tmp_path / "var" / "secret_key").read_text()
    assert (tmp_path / "var" / "encryption_key").stat().st_mode & 0o077 == 0
    assert run_manage(env, "check", tmp_path=tmp_path).returncode == 0
    assert (tmp_path / "var" / "secret_key").read_text() == key
