"""System checks that refuse unsafe production settings (``manage.py check --deploy``; docs/deploy.md).

They run with every management command (``migrate`` refuses to run on an error) and only when
``PORTAL_ENV=production``: the embedded development mode is meant to run on plain HTTP and SQLite.
What the settings module cannot even start with (no SECRET_KEY, a malformed PORTAL_ENCRYPTION_KEYS,
DEBUG on) it refuses itself.
"""

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.http.request import validate_host

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _production():
    return getattr(settings, "PORTAL_ENV", "development") == "production"


@register(Tags.security)
def check_base_url(app_configs=None, **kwargs):
    """PORTAL_BASE_URL is an https URL whose host ALLOWED_HOSTS accepts."""
    if not _production():
        return []
    url = settings.PORTAL_BASE_URL
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return [Error(
            "PORTAL_BASE_URL must be an https:// URL in production, not %r." % url,
            hint="Intune sends end users to the landing pages under this URL and Jamf Pro posts webhooks with their "
                 "secret to it: serve the portal over HTTPS (docs/deploy.md) and set PORTAL_BASE_URL=https://<host>.",
            id="portal.E001",
        )]
    if not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
        return [Error(
            "The host of PORTAL_BASE_URL (%s) is not in ALLOWED_HOSTS." % parts.hostname,
            hint="Add it to ALLOWED_HOSTS, or every landing page and webhook URL the portal hands out answers 400.",
            id="portal.E005",
        )]
    return []


@register(Tags.security)
def check_allowed_hosts(app_configs=None, **kwargs):
    """No wildcard in ALLOWED_HOSTS: the Host header would be believed from anyone."""
    if not _production():
        return []
    wild = [host for host in settings.ALLOWED_HOSTS if "*" in host]
    if wild:
        return [Error(
            "ALLOWED_HOSTS must not contain a wildcard in production (%s)." % ", ".join(wild),
            hint="List the portal's host names, comma-separated (ALLOWED_HOSTS=portal.example.com); a leading dot "
                 "(.example.com) allows a domain and its subdomains.",
            id="portal.E002",
        )]
    return []


@register(Tags.security)
def check_database(app_configs=None, **kwargs):
    """PostgreSQL in production, unless PORTAL_SINGLE_MACHINE declares a one-machine install on SQLite."""
    if not _production():
        return []
    engine = settings.DATABASES["default"]["ENGINE"]
    single = getattr(settings, "PORTAL_SINGLE_MACHINE", False)
    errors = []
    if engine == "django.db.backends.sqlite3" and not single:
        where = "a SQLite URL" if os.environ.get("DATABASE_URL") else "unset (SQLite under PORTAL_VAR_DIR)"
        errors.append(Error(
            "Production needs PostgreSQL: DATABASE_URL is %s." % where,
            hint="Set DATABASE_URL=postgres://user@host:5432/portal. A single-machine install (one web server and "
                 "one qcluster on one host) may stay on SQLite by setting PORTAL_SINGLE_MACHINE=true "
                 "(docs/deploy.md).",
            id="portal.E003",
        ))
    elif engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        errors.append(Error(
            "The portal runs on PostgreSQL (or SQLite on a single machine), not %s." % engine,
            hint="Set DATABASE_URL=postgres://user@host:5432/portal.",
            id="portal.E003",
        ))
    machines = getattr(settings, "PORTAL_WEB_MACHINES", 1)
    if single and machines > 1:
        errors.append(Error(
            "PORTAL_SINGLE_MACHINE is set, but PORTAL_WEB_MACHINES says %d machines serve the portal." % machines,
            hint="Several machines need PostgreSQL (DATABASE_URL) and a shared cache (REDIS_URL).",
            id="portal.E004",
        ))
    return errors


@register(Tags.caches)
def check_shared_cache(app_configs=None, **kwargs):
    """Several web processes need a shared cache: throttles and cached landing settings are per process otherwise."""
    if not _production():
        return []
    processes = getattr(settings, "WEB_CONCURRENCY", 1) * getattr(settings, "PORTAL_WEB_MACHINES", 1)
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if processes > 1 and backend in PER_PROCESS_CACHES:
        return [Warning(
            "%d web processes (WEB_CONCURRENCY × PORTAL_WEB_MACHINES) share no cache: each keeps its own." % processes,
            hint="Set REDIS_URL (redis://host:6379/0) so API throttles and cached landing-page settings are shared, "
                 "or run one web process (WEB_CONCURRENCY=1) with threads.",
            id="portal.W001",
        )]
    return []
