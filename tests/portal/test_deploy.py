"""docs/deploy.md tells the truth: its variables pass ``check --deploy``, each bad one fails with its own error,
and its commands, in its order, give a running portal that passes its smoke test (issue 12, items 13-15).

Everything runs in subprocesses with production settings, as an operator would run it.
"""

import os
import re
import runpy
import secrets
import shlex
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import pytest
import requests
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
BIN = Path(sys.executable).parent
ENV_FILE_MARK = "# /etc/mac-portal/portal.env"
COMMANDS_MARK = "# deploy, in this order"
ISSUE_ID = re.compile(r"portal\.[EW]\d{3}")


def blocks():
    return [body for _lang, body in re.findall(r"```(\w*)\n(.*?)```", DOC.read_text(), re.S)]


def block(first_line):
    found = [body for body in blocks() if body.startswith(first_line)]
    assert len(found) == 1, "docs/deploy.md must have one block starting %r" % first_line
    return found[0]


def documented_env():
    """The variables of the doc's environment file, with its two generated secrets filled in."""
    env = {}
    for line in block(ENV_FILE_MARK).splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    assert env["SECRET_KEY"].startswith("<") and env["PORTAL_ENCRYPTION_KEYS"].startswith("<")
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["PORTAL_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    assert not [name for name, value in env.items() if "<" in value], "placeholders left in the environment file"
    return env


def single_machine_env(env):
    """The doc's single-machine variant: no DATABASE_URL nor REDIS_URL, the opt-out, one web process."""
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PORTAL_SINGLE_MACHINE="true", WEB_CONCURRENCY="1")
    return env


def run(env, *args, tmp_path, program=None, timeout=180):
    """A command with only ``env`` (and PATH, HOME) in its environment, as systemd's EnvironmentFile gives."""
    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    full.update(env)
    full.setdefault("PORTAL_VAR_DIR", str(tmp_path / "var"))
    if str(full["PORTAL_VAR_DIR"]).startswith("/var/lib"):
        full["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    command = [program] if program else [sys.executable, "manage.py"]
    return subprocess.run([*command, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


def check_deploy(env, tmp_path):
    return run(env, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)


def test_the_documented_environment_passes_check_deploy_without_a_warning(tmp_path):
    result = check_deploy(documented_env(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert not (tmp_path / "var").exists()  # nothing generated: production never writes its own keys


def test_the_documented_single_machine_install_passes_check_deploy_without_a_warning(tmp_path):
    result = check_deploy(single_machine_env(documented_env()), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


BAD = [
    ("https base URL", {"PORTAL_BASE_URL": "http://portal.example.com"}, "portal.E001"),
    ("wildcard host", {"ALLOWED_HOSTS": "*"}, "portal.E002"),
    ("wildcard in a list", {"ALLOWED_HOSTS": "portal.example.com,*.example.com"}, "portal.E002"),
    ("no database URL", {"DATABASE_URL": None}, "portal.E003"),
    ("SQLite URL", {"DATABASE_URL": "sqlite:////tmp/portal.sqlite3"}, "portal.E003"),
    ("single machine on several", {"PORTAL_SINGLE_MACHINE": "true", "PORTAL_WEB_MACHINES": "2"}, "portal.E004"),
    ("base URL host not allowed", {"ALLOWED_HOSTS": "other.example.com"}, "portal.E005"),
    ("several processes, no shared cache", {"REDIS_URL": None}, "portal.W001"),
    ("several machines, no shared cache", {"REDIS_URL": None, "WEB_CONCURRENCY": "1", "PORTAL_WEB_MACHINES": "3"},
     "portal.W001"),
]
CHECKED_SETTINGS = ("PORTAL_ENV", "PORTAL_BASE_URL", "ALLOWED_HOSTS", "DATABASES", "PORTAL_SINGLE_MACHINE",
                    "WEB_CONCURRENCY", "PORTAL_WEB_MACHINES", "CACHES")


def changed(env, change):
    env = dict(env)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    return env


def load_settings(env, tmp_path):
    """portal/settings.py evaluated with exactly ``env`` in the environment, in this process (fast)."""
    env = dict(env, PORTAL_VAR_DIR=str(tmp_path / "var"))
    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "portal" / "settings.py"))


def portal_issues(namespace):
    """The portal's system check IDs that the settings in ``namespace`` raise (the real registered checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding setting DATABASES can lead to unexpected behavior"
        with override_settings(**{name: namespace[name] for name in CHECKED_SETTINGS}):
            return {issue.id for issue in run_checks(include_deployment_checks=True) if issue.id.startswith("portal.")}


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_each_bad_variable_raises_its_own_check(tmp_path, change, expected):
    assert portal_issues(load_settings(documented_env(), tmp_path)) == set()
    assert portal_issues(load_settings(changed(documented_env(), change), tmp_path)) == {expected}


def test_check_deploy_prints_each_bad_variables_error(tmp_path):
    """The same checks through ``manage.py check --deploy``: every bad variable prints its own line."""
    env = changed(documented_env(), {"PORTAL_BASE_URL": "http://portal.example.com", "ALLOWED_HOSTS": "*",
                                     "DATABASE_URL": None, "REDIS_URL": None})
    result = check_deploy(env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert set(ISSUE_ID.findall(output)) == {"portal.E001", "portal.E002", "portal.E003", "portal.W001"}, output
    assert "PORTAL_BASE_URL must be an https:// URL in production, not 'http://portal.example.com'." in output
    assert "ALLOWED_HOSTS must not contain a wildcard in production (*)." in output
    assert "Production needs PostgreSQL: DATABASE_URL is unset" in output
    assert "4 web processes (WEB_CONCURRENCY × PORTAL_WEB_MACHINES) share no cache" in output


def test_a_malformed_encryption_key_refuses_to_start_without_showing_it(tmp_path):
    bad = "c2hvcnQ="
    env = dict(documented_env(), PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode() + "," + bad)
    result = check_deploy(env, tmp_path)
    assert result.returncode != 0
    assert "PORTAL_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in result.stderr
    assert bad not in result.stdout + result.stderr
    with pytest.raises(ImproperlyConfigured, match="key 1 of 1 is not a Fernet key") as info:
        load_settings(dict(documented_env(), PORTAL_ENCRYPTION_KEYS="not-a-fernet-key"), tmp_path)
    assert "not-a-fernet-key" not in str(info.value)


def test_a_malformed_worker_count_is_refused_by_name(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="WEB_CONCURRENCY must be a whole number of at least 1"):
        load_settings(dict(documented_env(), WEB_CONCURRENCY="many"), tmp_path)


# -- the commands, the web unit and the smoke test --------------------------------------------------


def deploy_commands():
    """The manage.py commands of the doc's deploy block, in order, and the whole block's lines."""
    lines = [line.strip() for line in block(COMMANDS_MARK).splitlines() if line.strip()]
    commands = [shlex.split(line)[2:] for line in lines if line.startswith(".venv/bin/python manage.py")]
    return commands, lines


def gunicorn_args(port):
    unit = block("# /etc/systemd/system/mac-portal-web.service")
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    args = shlex.split(exec_start.removeprefix("ExecStart="))
    assert args[0].endswith("/.venv/bin/gunicorn")
    args[args.index("--bind") + 1] = "127.0.0.1:%d" % port
    return [str(BIN / "gunicorn"), *args[1:]]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """The web unit's command line, started on a free port with the given environment."""

    def __init__(self, env, tmp_path):
        self.port = free_port()
        full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8", **env}
        self.log = open(tmp_path / ("gunicorn-%d.log" % self.port), "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(gunicorn_args(self.port), cwd=ROOT, env=full, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        for _ in range(600):  # until it listens (or dies); not a timing assertion
            if self.process.poll() is not None:
                break
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("gunicorn did not start: " + (tmp_path / ("gunicorn-%d.log" % self.port)).read_text())

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.log.close()


def test_the_documented_commands_give_a_portal_that_passes_the_smoke_test(tmp_path):
    env = single_machine_env(documented_env())
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    commands, lines = deploy_commands()
    names = [command[0] for command in commands]
    assert names == ["check", "migrate", "collectstatic", "createsuperuser", "smoke_test"]
    restart = next(i for i, line in enumerate(lines) if "systemctl restart" in line)
    assert lines.index(".venv/bin/python manage.py collectstatic --noinput") < restart
    url = commands[-1][1]
    assert url == env["PORTAL_BASE_URL"]

    for command in commands[:2]:  # check --deploy, migrate
        result = run(env, *command, tmp_path=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr

    # Started before collectstatic, the admin answers 500 (what the doc warns about).
    web = Gunicorn(env, tmp_path)
    try:
        answer = requests.get("http://127.0.0.1:%d/admin/login/" % web.port, timeout=60,
                              headers={"Host": "portal.example.com", "X-Forwarded-Proto": "https"})
    finally:
        web.stop()
    assert answer.status_code == 500

    result = run(env, *commands[2], tmp_path=tmp_path)  # collectstatic
    assert result.returncode == 0, result.stdout + result.stderr

    web = Gunicorn(env, tmp_path)
    try:
        result = run(env, "smoke_test", url, "--via", "http://127.0.0.1:%d" % web.port, tmp_path=tmp_path)
    finally:
        web.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All smoke test steps passed." in result.stdout
    for step in ("health", "admin sign-in page", "static file /static/admin/css/base", "landing page",
                 "webhook", "plain http is redirected to https"):
        assert "✓ %s" % step in result.stdout
