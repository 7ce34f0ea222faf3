"""Settings for the Mac compliance portal.

One module, driven by environment variables (see README.md for the table). The embedded default
(no variables set) runs on one machine with SQLite under ``var/`` and generates its own secret
key and encryption key there on first run. ``PORTAL_ENV=production`` refuses to start without
``SECRET_KEY``, ``PORTAL_ENCRYPTION_KEYS`` (each a valid Fernet key), ``ALLOWED_HOSTS`` and
``PORTAL_BASE_URL``; the system checks in ``portal/checks.py`` refuse the unsafe values that remain
(``manage.py check --deploy``, docs/deploy.md).
"""

import datetime
import json
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))

PORTAL_ENV = os.environ.get("PORTAL_ENV", "development").strip().lower()
if PORTAL_ENV not in ("development", "production"):
    raise ImproperlyConfigured("PORTAL_ENV must be 'development' or 'production', not %r." % PORTAL_ENV)
PRODUCTION = PORTAL_ENV == "production"


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured("%s must be true or false, not %r." % (name, value))


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def _generated(name, make):
    """Read a value from ``var/<name>``, creating it (mode 0600) on first use. Embedded mode only."""
    path = VAR_DIR / name
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _required(name):
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured("%s must be set when PORTAL_ENV=production." % name)
    return value


def env_int(name, default, minimum=0):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured("%s must be a whole number of at least %d, not %r." % (name, minimum, value))
    return number


def _fernet_key():
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _fernet_keys(keys):
    """The keys, each checked to be a Fernet key: a malformed one would turn every secret read into a 500."""
    from cryptography.fernet import Fernet

    for index, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never echo the key: it is a secret even when malformed.
            raise ImproperlyConfigured(
                "PORTAL_ENCRYPTION_KEYS: key %d of %d is not a Fernet key (44 characters of url-safe base64 encoding "
                "32 bytes; keys are separated by commas). Make one with: python -c \"from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())\"" % (index, len(keys))
            ) from None
    return keys


if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    PORTAL_ENCRYPTION_KEYS = _fernet_keys(env_list("PORTAL_ENCRYPTION_KEYS") or _required("PORTAL_ENCRYPTION_KEYS"))
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or _required("ALLOWED_HOSTS")
    PORTAL_BASE_URL = _required("PORTAL_BASE_URL").rstrip("/")
    DEBUG = env_bool("DEBUG", False)
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when PORTAL_ENV=production.")
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _generated("secret_key", lambda: secrets.token_urlsafe(50))
    PORTAL_ENCRYPTION_KEYS = _fernet_keys(
        env_list("PORTAL_ENCRYPTION_KEYS") or [_generated("encryption_key", _fernet_key)]
    )
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
    PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    DEBUG = env_bool("DEBUG", True)

INSTALLED_APPS = [
    # knox before portal: portal/admin.py replaces knox's token admin, so knox's must register first.
    "knox",
    # auditlog before portal: portal/admin.py replaces auditlog's admin with the tenant-scoped audit trail.
    "auditlog",
    "portal",
    "devices",
    "compliance",
    *([] if PRODUCTION else ["simulator"]),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "signin",  # before allauth: its templates replace allauth's; its provider is Sign in with Microsoft
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.audit_context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "signin.middleware.RequireMFAMiddleware",
    # Last, as axes asks: turns a lockout flagged during authenticate() into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

# AxesBackend first: it refuses a locked-out username/address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "signin.backends.PasswordBackend",  # allauth's; refuses MSP staff passwords if PORTAL_STAFF_PASSWORD_LOGIN is off
]

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

# Database: DATABASE_URL, else SQLite under var/ in WAL mode with a busy timeout so the web
# server and one qcluster worker can share it. Production requires PostgreSQL (portal/checks.py) unless
# PORTAL_SINGLE_MACHINE declares a one-machine install that accepts SQLite's limits (docs/deploy.md).
PORTAL_SINGLE_MACHINE = env_bool("PORTAL_SINGLE_MACHINE", False)
_default_sqlite = "sqlite:///" + str(VAR_DIR / "portal.sqlite3")
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _default_sqlite, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if not os.environ.get("DATABASE_URL"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"
FORMS_URLFIELD_ASSUME_HTTPS = True

# Cache: Redis when REDIS_URL is set (shared by every web server and worker), else local memory, which each
# process keeps to itself. How many web processes serve the portal: WEB_CONCURRENCY (gunicorn's own variable
# for its worker count, so the declaration and the real count are the same setting) on each of
# PORTAL_WEB_MACHINES machines; more than one without REDIS_URL is warned about (portal/checks.py).
REDIS_URL = os.environ.get("REDIS_URL", "")
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 1, minimum=1)
PORTAL_WEB_MACHINES = env_int("PORTAL_WEB_MACHINES", 1, minimum=1)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2 with the ORM broker (delivery receipts; Redis would lose tasks in flight).
# retry must stay larger than timeout, or a slow task is started twice.
Q_CLUSTER = {
    "name": "portal",
    "orm": "default",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 1,
    "ack_failures": True,
    "label": "Background tasks",
}
if os.environ.get("Q_CLUSTER"):
    Q_CLUSTER.update(json.loads(os.environ["Q_CLUSTER"]))

# Security headers; production adds the HTTPS-only settings that `check --deploy` asks for.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PORTAL_BASE_URL])

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "portal@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "client_errors_without_traceback": {"()": "portal.logging.ClientErrorsWithoutTraceback"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler", "level": "ERROR", "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's default config gives "django" a console handler of its own (in DEBUG) beside root's, which
        # printed every request warning twice: here it keeps only the admins' e-mail and leaves printing to root.
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        # A 403 or 404 is one line, without the traceback of the PermissionDenied or Http404 behind it.
        "django.request": {"filters": ["client_errors_without_traceback"]},
    },
}

# Outside systems. PORTAL_CLOUD_OVERRIDES (JSON) points the Microsoft clouds at other hosts (the
# simulator in the demo and tests); PORTAL_CA_BUNDLE is a CA file the HTTP clients trust instead
# of the system store. Pass `verify=` on every request: requests lets REQUESTS_CA_BUNDLE from the
# environment override a Session's own `verify`.
PORTAL_CLOUD_OVERRIDES = json.loads(os.environ.get("PORTAL_CLOUD_OVERRIDES") or "{}")
PORTAL_CA_BUNDLE = os.environ.get("PORTAL_CA_BUNDLE", "")
# URLs tenant admins set (Jamf Pro URL, logo) must resolve to public addresses (portal/outbound.py), except on
# these hosts: comma-separated names (jamf.corp.example), "*.corp.example", IP addresses or networks
# (10.20.0.0/16). For an on-premises Jamf Pro. Link-local and cloud metadata addresses stay refused.
PORTAL_OUTBOUND_ALLOWED_HOSTS = env_list("PORTAL_OUTBOUND_ALLOWED_HOSTS", [])
# The demo's simulator (`make demo` sets it; demo_data points the demo tenants' Jamf Pro URL at it).
DEMO_SIMULATOR_URL = os.environ.get("DEMO_SIMULATOR_URL", "")
# While `make demo` runs, it leaves these settings (and PORTAL_BASE_URL) in var/demo-environment.json so that
# manage.py commands run from another terminal reach its simulator and its portal too. Development mode only.
_demo_environment = VAR_DIR / "demo-environment.json"
_under_tests = "pytest" in sys.modules  # the test suite points the clients at its own simulator
if not PRODUCTION and not _under_tests and "PORTAL_CLOUD_OVERRIDES" not in os.environ and _demo_environment.exists():
    try:
        _demo = json.loads(_demo_environment.read_text())
        PORTAL_CLOUD_OVERRIDES = json.loads(_demo["PORTAL_CLOUD_OVERRIDES"])
        PORTAL_CA_BUNDLE = _demo["PORTAL_CA_BUNDLE"]
        if "PORTAL_BASE_URL" not in os.environ:
            PORTAL_BASE_URL = _demo.get("PORTAL_BASE_URL", PORTAL_BASE_URL).rstrip("/")
        DEMO_SIMULATOR_URL = DEMO_SIMULATOR_URL or _demo.get("DEMO_SIMULATOR_URL", "")
        PORTAL_OUTBOUND_ALLOWED_HOSTS = _demo.get("PORTAL_OUTBOUND_ALLOWED_HOSTS", "").split(",")
    except (OSError, ValueError, KeyError):
        pass

# Portal knobs.
IMPORT_BATCH_SIZE = int(os.environ.get("IMPORT_BATCH_SIZE", "500"))
# A check-in or report date further than this many seconds ahead of its receipt is stored as the time of
# receipt (devices/timestamps.py): a Mac's clock or a forged body must not pin its last check-in in the future.
JAMF_CLOCK_SKEW_SECONDS = int(os.environ.get("JAMF_CLOCK_SKEW_SECONDS", "300"))
# Stored Jamf webhook bodies and pull summaries are deleted after this many days (pending ones never).
INVENTORY_EVENT_RETENTION_DAYS = int(os.environ.get("INVENTORY_EVENT_RETENTION_DAYS", "14"))

# REST API (portal/api/): knox tokens (hashed, with an expiry) or the session for the browsable API;
# the membership role decides what a user may do; cursor pagination with a capped page size; per-token
# and per-IP throttles kept in the cache (Redis when REDIS_URL is set).
# Reverse proxies in front of the portal, each appending to X-Forwarded-For (portal/client_address.py): 0
# means the client's address is REMOTE_ADDR and the header is ignored. API_NUM_PROXIES is its older name.
PORTAL_TRUSTED_PROXIES = int(os.environ.get("PORTAL_TRUSTED_PROXIES") or os.environ.get("API_NUM_PROXIES") or "0")
if PORTAL_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("PORTAL_TRUSTED_PROXIES must be 0 or more.")
API_PAGE_SIZE = int(os.environ.get("API_PAGE_SIZE", "100"))
API_MAX_PAGE_SIZE = int(os.environ.get("API_MAX_PAGE_SIZE", "1000"))
API_TOKEN_MAX_DAYS = int(os.environ.get("API_TOKEN_MAX_DAYS", "365"))
API_INVENTORY_MAX_BYTES = int(os.environ.get("API_INVENTORY_MAX_BYTES", str(50 * 1024 * 1024)))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes an anonymous request a 401, not a 403.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.TenantRolePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.CursorPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.TokenRateThrottle",
        "portal.api.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("API_THROTTLE_TOKEN", "1200/min"),
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
    },
    "NUM_PROXIES": PORTAL_TRUSTED_PROXIES,  # never trust X-Forwarded-For that no declared proxy wrote
    "EXCEPTION_HANDLER": "portal.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
REST_KNOX = {
    "TOKEN_TTL": datetime.timedelta(days=int(os.environ.get("API_TOKEN_DEFAULT_DAYS", "90"))),
    "TOKEN_PREFIX": "mcp_",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mac compliance portal API",
    "DESCRIPTION": "Compliance reports and automation for the Macs of every tenant you may see. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.admin_only_fields_are_optional",
    ],
    "ENUM_NAME_OVERRIDES": {
        "InventoryEventStatusEnum": "devices.models.InventoryEvent.Status",
        "ComplianceReportStatusEnum": "compliance.models.ComplianceReport.Status",
        "SyncRunStatusEnum": "portal.models.SyncRun.Status",
    },
}

# End-user landing pages (portal/landing.py): how long browsers and shared caches may keep a page, and how
# long a worker keeps a tenant's landing settings before reading them again.
LANDING_MAX_AGE = int(os.environ.get("LANDING_MAX_AGE", "60"))
LANDING_TENANT_CACHE_SECONDS = int(os.environ.get("LANDING_TENANT_CACHE_SECONDS", "30"))

# Microsoft (compliance/intune/client.py): connect and read timeouts in seconds; retries of 429 / 5xx /
# dropped connections, each waiting Retry-After (or an exponential backoff) of at most INTUNE_MAX_RETRY_WAIT
# seconds (a longer Retry-After is left to the caller's schedule); days before the last valid client secret
# expires on which tenant admins are warned.
INTUNE_HTTP_TIMEOUT = (
    float(os.environ.get("INTUNE_CONNECT_TIMEOUT", "5")),
    float(os.environ.get("INTUNE_READ_TIMEOUT", "30")),
)
INTUNE_MAX_RETRIES = int(os.environ.get("INTUNE_MAX_RETRIES", "3"))
INTUNE_MAX_RETRY_WAIT = float(os.environ.get("INTUNE_MAX_RETRY_WAIT", "30"))
SECRET_EXPIRY_WARNING_DAYS = (30, 14, 7, 1)


# The MSP's partner application (portal/partner.py, docs/connect-a-tenant.md part 1). Normally kept in the
# database and managed in the admin; an operator who keeps credentials outside the database sets these
# instead (the admin then shows them read-only): the client ID, Intune's display name of the partner, a PEM
# file holding the private key and its certificate, and/or a client secret with its expiry (ISO date).
def _partner_app_from_environment():
    client_id = os.environ.get("PORTAL_PARTNER_CLIENT_ID", "").strip()
    if not client_id:
        return {}
    config = {"client_id": client_id, "display_name": os.environ.get("PORTAL_PARTNER_DISPLAY_NAME", "").strip()}
    cert_file = os.environ.get("PORTAL_PARTNER_CERTIFICATE_FILE", "").strip()
    if cert_file:
        try:
            config["certificate_pem"] = Path(cert_file).read_text()
        except OSError as exc:
            raise ImproperlyConfigured("PORTAL_PARTNER_CERTIFICATE_FILE cannot be read: %s" % exc) from None
    secret = os.environ.get("PORTAL_PARTNER_CLIENT_SECRET", "").strip()
    if secret:
        config["client_secret"] = secret
        expires = os.environ.get("PORTAL_PARTNER_CLIENT_SECRET_EXPIRES", "").strip()
        if expires:
            try:
                when = datetime.datetime.fromisoformat(expires)
            except ValueError:
                raise ImproperlyConfigured(
                    "PORTAL_PARTNER_CLIENT_SECRET_EXPIRES must be an ISO date such as 2027-05-31."
                ) from None
            config["client_secret_expires"] = when if when.tzinfo else when.replace(tzinfo=datetime.UTC)
    if not cert_file and not secret:
        raise ImproperlyConfigured(
            "PORTAL_PARTNER_CLIENT_ID is set: also set PORTAL_PARTNER_CERTIFICATE_FILE or "
            "PORTAL_PARTNER_CLIENT_SECRET."
        )
    return config


PORTAL_PARTNER_APP = _partner_app_from_environment()
# How long a Grant admin consent link stays usable (its signed state expires).
CONSENT_STATE_MAX_AGE = int(os.environ.get("CONSENT_STATE_MAX_AGE", str(24 * 3600)))

# Reports to Intune (compliance/outbox.py, compliance/delivery.py; see docs/scaling.md). Devices per
# DataUploadMessage; how often a healthy Mac is reported again (capped at a third of the tenant's validity
# period); when a failed report is tried again on its own; delivery attempts before a report fails; the
# backoff between them (Retry-After when Intune sends one); how long a claimed message may stay in flight
# before another worker takes it over (longer than one send with its in-request retries); threads per
# tenant on PostgreSQL (SQLite: one); seconds one delivery task may run before it hands over.
INTUNE_BATCH_SIZE = int(os.environ.get("INTUNE_BATCH_SIZE", "100"))
INTUNE_REPORT_REFRESH_HOURS = float(os.environ.get("INTUNE_REPORT_REFRESH_HOURS", str(7 * 24)))
INTUNE_RETRY_FAILED_AFTER_HOURS = float(os.environ.get("INTUNE_RETRY_FAILED_AFTER_HOURS", "6"))
INTUNE_DELIVERY_MAX_ATTEMPTS = int(os.environ.get("INTUNE_DELIVERY_MAX_ATTEMPTS", "12"))
INTUNE_BACKOFF_BASE = float(os.environ.get("INTUNE_BACKOFF_BASE", "30"))
INTUNE_BACKOFF_MAX = float(os.environ.get("INTUNE_BACKOFF_MAX", "3600"))
INTUNE_LEASE_SECONDS = float(os.environ.get("INTUNE_LEASE_SECONDS", "300"))
INTUNE_DELIVERY_CONCURRENCY = int(os.environ.get("INTUNE_DELIVERY_CONCURRENCY", "4"))
INTUNE_DELIVERY_TIME_BUDGET = float(os.environ.get("INTUNE_DELIVERY_TIME_BUDGET", "240"))
INTUNE_DELIVERY_HTTP_RETRIES = int(os.environ.get("INTUNE_DELIVERY_HTTP_RETRIES", "2"))
INTUNE_DELIVERY_MAX_RETRY_WAIT = float(os.environ.get("INTUNE_DELIVERY_MAX_RETRY_WAIT", "10"))
INTUNE_STATUS_POLL_LIMIT = int(os.environ.get("INTUNE_STATUS_POLL_LIMIT", "2000"))
# Event-driven delivery (compliance/tasks.py): a change is delivered this many seconds after it is evaluated (a
# burst goes out in one message); Intune's verdict on a message is first read this long after it was accepted,
# then at twice the message's age, at most INTUNE_STATUS_POLL_MAX_WAIT apart.
INTUNE_DELIVERY_DEBOUNCE = float(os.environ.get("INTUNE_DELIVERY_DEBOUNCE", "1.5"))
INTUNE_STATUS_FIRST_POLL = float(os.environ.get("INTUNE_STATUS_FIRST_POLL", "3"))
INTUNE_STATUS_POLL_MAX_WAIT = float(os.environ.get("INTUNE_STATUS_POLL_MAX_WAIT", "60"))
INTUNE_HISTORY_DAYS = int(os.environ.get("INTUNE_HISTORY_DAYS", "180"))  # older superseded/completed rows go
SYNC_RUN_HISTORY_DAYS = int(os.environ.get("SYNC_RUN_HISTORY_DAYS", "30"))

# Audit trail (portal/audit.py, django-auditlog): who changed what, from which address; secrets only as
# "set" / "rotated". Entries older than AUDIT_RETENTION_DAYS are deleted daily (0 keeps them for ever).
AUDITLOG_LOGENTRY_MODEL = "portal.AuditEvent"
# auditlog's own LogEntry is swapped out for portal.AuditEvent: without its migrations no unused table is
# made (one referencing content types, which PostgreSQL would then refuse to truncate in flushes).
MIGRATION_MODULES = {"auditlog": None}
AUDITLOG_STORE_JSON_CHANGES = True
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "730"))

# Sign-in lockouts (django-axes, signin/lockout.py, docs/security.md). Failed password sign-ins are counted
# in the database (shared by every worker and server) per username and client address together, and per
# address alone with a higher limit; a locked combination is refused, with the right password too, until
# LOGIN_COOLOFF_MINUTES after its last failure. The client address is portal.client_address.client_ip's
# (PORTAL_TRUSTED_PROXIES above): never an X-Forwarded-For entry that no declared proxy wrote.
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "50"))
LOGIN_COOLOFF_MINUTES = float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15"))
if min(LOGIN_FAILURE_LIMIT, LOGIN_ADDRESS_FAILURE_LIMIT, LOGIN_COOLOFF_MINUTES) <= 0:
    raise ImproperlyConfigured(
        "LOGIN_FAILURE_LIMIT, LOGIN_ADDRESS_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be above 0."
    )
AXES_HANDLER = "signin.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = "signin.lockout.failure_limit"  # the handler scales the address-only count to its own limit
AXES_COOLOFF_TIME = datetime.timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_CLIENT_IP_CALLABLE = "portal.client_address.client_ip"
AXES_RESET_ON_SUCCESS = False  # the handler clears only the signed-in user's failures from that address
AXES_LOCKOUT_TEMPLATE = "signin/lockout.html"
AXES_VERBOSE = False

# Staff sign-in with django-allauth (signin/, docs/security.md): one sign-in page at /accounts/login/ (the
# admin's and the browsable API's login lead there), username and password or Sign in with Microsoft. Nobody
# signs up: MSP staff create accounts in the admin. Wrong passwords are axes' to count (in the database, for
# every worker): allauth's per-process login limits are off for them (signin/adapters.py). Its "login_failed"
# limit guards MFA codes (at sign-in, reauthentication and set-up): 5 per 5 minutes per user, 10 a minute per
# address, counted in the cache (shared with REDIS_URL). A wrong code also counts as a failed sign-in for axes
# (signin/lockout.py), in the database.
ACCOUNT_ADAPTER = "signin.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "signin.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_RATE_LIMITS = {"login": False, "login_failed": "10/m/ip,5/5m/key"}
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_SESSION_REMEMBER = False
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = float(os.environ.get("PORTAL_SSO_TIMEOUT", "10"))
# Sign in with Microsoft (OpenID Connect) against the MSP's own Entra tenant: on when all three are set.
# PORTAL_SSO_AUTHORITY is Entra's login host (the simulator's /oidc in the demo and tests).
PORTAL_SSO_TENANT_ID = os.environ.get("PORTAL_SSO_TENANT_ID", "").strip().lower()
PORTAL_SSO_CLIENT_ID = os.environ.get("PORTAL_SSO_CLIENT_ID", "").strip()
PORTAL_SSO_CLIENT_SECRET = os.environ.get("PORTAL_SSO_CLIENT_SECRET", "").strip()
PORTAL_SSO_AUTHORITY = os.environ.get("PORTAL_SSO_AUTHORITY", "https://login.microsoftonline.com").rstrip("/")
# MFA (allauth.mfa): TOTP, recovery codes and security keys / passkeys (WebAuthn) as a second factor after the
# password. PORTAL_REQUIRE_MFA (on in production, off in development and the demo unless set) makes MSP staff
# who signed in with a password set one up before anything else (signin/middleware.py); Microsoft sign-ins
# leave MFA to Entra (Conditional Access). API tokens are not affected.
PORTAL_REQUIRE_MFA = env_bool("PORTAL_REQUIRE_MFA", PRODUCTION)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = os.environ.get("PORTAL_MFA_ISSUER", "Mac compliance portal")
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION  # http://127.0.0.1 in development
# Off: MSP staff (superusers) cannot sign in with a password at all, only with Microsoft.
PORTAL_STAFF_PASSWORD_LOGIN = env_bool("PORTAL_STAFF_PASSWORD_LOGIN", True)


def sso_providers(tenant_id, client_id, client_secret, authority):
    """allauth's SOCIALACCOUNT_PROVIDERS for Sign in with Microsoft (empty when not configured)."""
    if not (tenant_id and client_id and client_secret):
        return {}
    app = {
        "name": "Microsoft",
        "client_id": client_id,
        "secret": client_secret,
        "settings": {"server_url": "%s/%s/v2.0" % (authority, tenant_id), "token_auth_method": "client_secret_post"},
    }
    return {"entra": {"APPS": [app], "OAUTH_PKCE_ENABLED": True}}


SOCIALACCOUNT_PROVIDERS = sso_providers(
    PORTAL_SSO_TENANT_ID, PORTAL_SSO_CLIENT_ID, PORTAL_SSO_CLIENT_SECRET, PORTAL_SSO_AUTHORITY
)
if not PORTAL_STAFF_PASSWORD_LOGIN and not SOCIALACCOUNT_PROVIDERS:
    raise ImproperlyConfigured(
        "PORTAL_STAFF_PASSWORD_LOGIN is off but Sign in with Microsoft is not configured (PORTAL_SSO_TENANT_ID, "
        "PORTAL_SSO_CLIENT_ID, PORTAL_SSO_CLIENT_SECRET): MSP staff could not sign in."
    )
