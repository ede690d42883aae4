"""Clacks settings: one module, read top to bottom, configured by the environment.

Every variable read here is listed in the README's configuration table. The
defaults suit a laptop (SQLite under var/); production sets what
`manage.py check --deploy` asks for. Importing this module reads files but
never writes any: bin/prepare creates var/, the static root and the
development key.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("CLACKS_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    # Empty counts as unset: `make test-sqlite` runs with DATABASE_URL= .
    return os.getenv(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name, "")
    if value not in ("", "True", "False", "true", "false", "1", "0"):
        raise ImproperlyConfigured(f"{name}={value!r}: use True or False")
    return default if value == "" else value in ("True", "true", "1")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.getenv(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r}: must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.getenv(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list:
    """Comma-separated addresses or CIDR networks, e.g. "10.0.0.0/8,127.0.0.1"."""
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or network") from None
    return networks


def env_header_pair(name: str) -> tuple[str, str] | None:
    """"HEADER,value" as Django's (header, value) pair, e.g. "HTTP_X_FORWARDED_PROTO,https"."""
    value = os.getenv(name, "")
    if not value:
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not header.startswith("HTTP_") or not expected:
        raise ImproperlyConfigured(f"{name}={value!r}: use HEADER,value such as HTTP_X_FORWARDED_PROTO,https")
    return header, expected


def env_secret(name: str) -> str:
    """The value of NAME, or the contents of the file named by NAME_FILE (Docker secrets)."""
    path = os.getenv(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r}: {exc.strerror}") from None
    return os.getenv(name, "")


def development_secret_key() -> str:
    """The key bin/prepare generated once under var/, so sessions survive restarts on a laptop."""
    path = VAR_DIR / "secret_key"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if not key:
        raise ImproperlyConfigured(
            f"No SECRET_KEY: set SECRET_KEY (or SECRET_KEY_FILE), or run bin/prepare to generate a "
            f"development key in {path} (make serve, make migrate and make test run it)."
        )
    return key


# --- Core ---------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is False")
    SECRET_KEY = development_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "rest_framework",
    "django_prometheus",
    # Two-factor sign-in (TOTP devices; organizations.twofactor) and sign-in throttling
    # shared by every worker through the database (docs/accounts.md).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "organizations",
    "telemetry",
    "dashboard",
    "alerts",
    "api",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    # Outermost, so every response gets the header: 404s, errors, static files.
    "config.middleware.clacks_overhead",
    # Next, so its one log line per request times everything and sees the final status.
    "config.middleware.request_log",
    # Probes and /metrics answer before host validation and the HTTPS redirect
    # (load balancers call instances by address over HTTP); uncounted by django-prometheus.
    "config.middleware.probes",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Pages compressed for browsers that ask (static files are compressed by whitenoise
    # at collectstatic); Django pads each body against BREACH. bench/lighthouse.py checks the gain.
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.user.is_verified(); then two-factor verification and enrolment before any
    # other page, and the session list's "last seen" (organizations.middleware).
    "django_otp.middleware.OTPMiddleware",
    "organizations.middleware.two_factor",
    "organizations.middleware.session_activity",
    # Times on pages in the viewer's zone: their profile's, else their browser's (docs/time.md).
    "organizations.timezones.time_zone_middleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Pages answer a friendly 503 while the database is away (the API shapes its own).
    "config.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Turns a locked-out sign-in into the sign-in page saying when to retry (organizations.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The organization switcher and the role-aware navigation.
                "organizations.context_processors.navigation",
                # The banner on organization pages when a notification channel was disabled.
                "alerts.context_processors.disabled_channels",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'clacks.sqlite3'}")
# Longest a single PostgreSQL statement may run, in milliseconds (0: no limit).
# A stuck query then fails (ingest answers 503) instead of holding a worker.
# Migrations run without it (docker/entrypoint.sh). Behind PgBouncer in
# transaction mode set it on the role instead (ALTER ROLE ... SET statement_timeout).
CLACKS_DB_STATEMENT_TIMEOUT_MS = env_int("CLACKS_DB_STATEMENT_TIMEOUT_MS", 0, minimum=0)
# "pgbouncer" when DATABASE_URL (and DATABASE_REPLICA_URL) lead to PgBouncer in
# transaction pooling mode: no server-side cursors, no prepared statements, no
# connection options (docs/pgbouncer.md says why each).
CLACKS_DB_POOLER = env_str("CLACKS_DB_POOLER").lower()
if CLACKS_DB_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(f"CLACKS_DB_POOLER={CLACKS_DB_POOLER!r}: use pgbouncer, or leave it unset")
if CLACKS_DB_POOLER and CLACKS_DB_STATEMENT_TIMEOUT_MS:
    raise ImproperlyConfigured(
        "CLACKS_DB_STATEMENT_TIMEOUT_MS cannot be sent through PgBouncer (it refuses the connection option "
        "that carries it): unset it and run ALTER ROLE <user> SET statement_timeout = '30s' instead"
    )


def database_config(name: str, url: str) -> dict:
    """Django's DATABASES entry for one URL, with Clacks' connection options."""
    try:
        database = dj_database_url.parse(
            url,
            conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0),
            # A connection that died with its server is replaced on the next request.
            conn_health_checks=True,
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None
    if database["ENGINE"] == "django.db.backends.postgresql":
        # django-prometheus' backend, timing new connections (telemetry/dbmetrics.py).
        database["ENGINE"] = "config.db.postgresql"
        options = database.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", env_int("CLACKS_DB_CONNECT_TIMEOUT", 5, minimum=1))
        if CLACKS_DB_STATEMENT_TIMEOUT_MS:
            options["options"] = f"{options.get('options', '')} -c statement_timeout={CLACKS_DB_STATEMENT_TIMEOUT_MS}".strip()
        if CLACKS_DB_POOLER == "pgbouncer":
            # A server-side cursor outside a transaction is declared WITH HOLD and
            # lives in one server session, which the next transaction may not get.
            database["DISABLE_SERVER_SIDE_CURSORS"] = True
            # psycopg prepares a statement run 5 times on a connection; the next
            # transaction may run on a server connection that never saw it.
            options["prepare_threshold"] = None
    elif database["ENGINE"] == "django.db.backends.sqlite3":
        database["ENGINE"] = "django_prometheus.db.backends.sqlite3"
        database.setdefault("OPTIONS", {})
        # WAL lets the dashboard read while a batch is written; wait rather than fail
        # when another gunicorn worker holds the write lock.
        database["OPTIONS"].update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    return database


DATABASES = {"default": database_config("DATABASE_URL", DATABASE_URL)}
DATABASE_ROUTERS: list[str] = []
# Events on a PostgreSQL server of their own: the telemetry app's tables (events,
# what is derived from them, the nonce store, counters, plans, the scheduler's
# jobs) there; accounts, organizations, apps and settings on DATABASE_URL's
# (telemetry.databases; docs/events-database.md). Unset: one database for all.
EVENTS_DATABASE_URL = env_str("EVENTS_DATABASE_URL")
if EVENTS_DATABASE_URL:
    DATABASES["events"] = database_config("EVENTS_DATABASE_URL", EVENTS_DATABASE_URL)
    if not all(DATABASES[alias]["ENGINE"] == "config.db.postgresql" for alias in ("default", "events")):
        raise ImproperlyConfigured("EVENTS_DATABASE_URL: events on a server of their own need PostgreSQL for both URLs")
    # No foreign keys there: the apps they would point at are on the other server.
    DATABASES["events"]["CLACKS_NO_FOREIGN_KEYS"] = True
    DATABASE_ROUTERS.append("telemetry.databases.EventsRouter")
# A streaming replica of the server holding the events (EVENTS_DATABASE_URL's when
# set, else DATABASE_URL's): GET and HEAD requests read event data from it while it is up and less than CLACKS_REPLICA_MAX_LAG seconds behind
# (checked at most every CLACKS_REPLICA_CHECK_SECONDS); all else uses the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
CLACKS_REPLICA_MAX_LAG = env_int("CLACKS_REPLICA_MAX_LAG", 30, minimum=0)
CLACKS_REPLICA_CHECK_SECONDS = env_int("CLACKS_REPLICA_CHECK_SECONDS", 5, minimum=0)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_config("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"] or "sqlite" in DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL: a replica needs PostgreSQL for both URLs")
    # Tests create no database on the replica: it follows the primary's test database.
    DATABASES["replica"]["TEST"] = {"MIRROR": "events" if EVENTS_DATABASE_URL else "default"}
    # First: it sends event reads to the replica, or passes them on.
    DATABASE_ROUTERS.insert(0, "telemetry.replicas.ReplicaRouter")
    # GET and HEAD requests may read event data from it (telemetry.replicas).
    MIDDLEWARE.insert(MIDDLEWARE.index("config.middleware.DatabaseUnavailableMiddleware"), "telemetry.replicas.middleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and shared state -----------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
# Where the state every worker and instance shares lives (nonces, rate and quota
# counters, the cache): "redis" when REDIS_URL is set, else "database". Decided
# here once; telemetry.auth and telemetry.limits read this, never REDIS_URL.
CLACKS_SHARED_STORE = "redis" if REDIS_URL else "database"
if CLACKS_SHARED_STORE == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "clacks",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth and sessions ------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "organizations:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "organizations:login"
# Two weeks by default. Changing the password ends the user's other sessions.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Strict"
# Sign-in throttling (django-axes, counted in the database so every worker and
# instance shares it, with or without Redis): after this many failures for one
# username from one address, that pair is refused until this many seconds after
# its last counted failure. Failures during a lockout do not extend it.
CLACKS_LOGIN_MAX_FAILURES = env_int("CLACKS_LOGIN_MAX_FAILURES", 5, minimum=1)
CLACKS_LOGIN_LOCKOUT_SECONDS = env_int("CLACKS_LOGIN_LOCKOUT_SECONDS", 300, minimum=1)
# Share links (docs/sharing.md): requests one client may make to one link per
# minute (pages, password tries and badges), and how long a badge is cached.
CLACKS_SHARE_REQUESTS_PER_MINUTE = env_int("CLACKS_SHARE_REQUESTS_PER_MINUTE", 60, minimum=1)
CLACKS_BADGE_CACHE_SECONDS = env_int("CLACKS_BADGE_CACHE_SECONDS", 300, minimum=0)
# Archive before delete (docs/archive.md): Parquet files go to the S3-compatible
# bucket when CLACKS_ARCHIVE_S3_BUCKET is set, otherwise to CLACKS_ARCHIVE_DIR.
CLACKS_ARCHIVE_DIR = Path(env_str("CLACKS_ARCHIVE_DIR", str(VAR_DIR / "archive")))
CLACKS_ARCHIVE_S3_BUCKET = env_str("CLACKS_ARCHIVE_S3_BUCKET")
CLACKS_ARCHIVE_S3_ENDPOINT = env_str("CLACKS_ARCHIVE_S3_ENDPOINT")
CLACKS_ARCHIVE_S3_REGION = env_str("CLACKS_ARCHIVE_S3_REGION", "us-east-1")
CLACKS_ARCHIVE_S3_ACCESS_KEY = env_secret("CLACKS_ARCHIVE_S3_ACCESS_KEY")
CLACKS_ARCHIVE_S3_SECRET_KEY = env_secret("CLACKS_ARCHIVE_S3_SECRET_KEY")

# Single sign-on with OpenID Connect (organizations/oidc.py, README "Single sign-on"):
# on when all three are set. The provider's endpoints come from the issuer's
# discovery document, fetched at the first sign-in, never here.
# Exactly as the provider spells it (some end in "/"): the ID token's iss must match it.
OIDC_ISSUER = env_str("OIDC_ISSUER")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET")
if any((OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)) and not all((OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)):
    raise ImproperlyConfigured("OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET: set all three for single sign-on, or none")
if OIDC_ISSUER:
    _issuer = urlsplit(OIDC_ISSUER)
    # Plain http only to this machine (a provider in development or the tests).
    if not _issuer.hostname or not (
        _issuer.scheme == "https" or (_issuer.scheme == "http" and _issuer.hostname in ("127.0.0.1", "localhost", "::1"))
    ):
        raise ImproperlyConfigured(f"OIDC_ISSUER={OIDC_ISSUER!r}: use the provider's https:// issuer URL")
OIDC_BUTTON_LABEL = env_str("OIDC_BUTTON_LABEL", "Sign in with single sign-on")
OIDC_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
if OIDC_SIGN_ALGO not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
    raise ImproperlyConfigured(f"OIDC_SIGN_ALGO={OIDC_SIGN_ALGO!r}: use RS256, RS384, RS512, ES256, ES384 or ES512")

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out pair is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Single sign-on answers only its callback; it never sees a password, so axes
    # counts no single sign-on failures.
    "organizations.oidc.OidcBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = "organizations.lockout.failure_limit"
AXES_COOLOFF_TIME = "organizations.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "organizations.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "organizations.lockout.lockout_response"
# Successful sign-ins are in the session list (organizations.sessions), not in axes' log.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Password-reset links (made by an owner, or mailed when EMAIL_HOST is set) work
# once and for this many seconds.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 24 * 3600, minimum=60)
# The issuer shown in authenticator apps next to the account name.
OTP_TOTP_ISSUER = "Clacks"

# --- Content-Security-Policy ------------------------------------------------------

# Every page loads scripts, styles and images only from this server, with no
# inline code or style attributes (docs/csp.md); the browser tests fail on any
# violation. Set in code, not the environment: nothing here differs by deployment.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
    }
}

# --- Internationalisation -------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files -----------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# bin/prepare creates it: whitenoise expects it even before collectstatic.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("CLACKS_MANIFEST_STATIC", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve from the app directories without collectstatic on a laptop.
WHITENOISE_USE_FINDERS = DEBUG

# --- Ingest ---------------------------------------------------------------------

# Largest request body accepted, compressed or not (docs/protocol.md, Body: default 5 MiB).
CLACKS_MAX_BODY_BYTES = env_int("CLACKS_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)
# Django refuses larger bodies itself before a view reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = CLACKS_MAX_BODY_BYTES
# Accepted clock skew for X-Timestamp, and how long a nonce is remembered.
CLACKS_TIMESTAMP_TOLERANCE = env_int("CLACKS_TIMESTAMP_TOLERANCE", 600, minimum=1)
# How long an app and its credentials are cached for ingest lookups.
CLACKS_APP_CACHE_SECONDS = env_int("CLACKS_APP_CACHE_SECONDS", 30, minimum=0)
# Fernet key(s) that encrypt HMAC secrets at rest; comma-separated, newest first,
# so old keys can still decrypt during a key rotation. Derived from SECRET_KEY
# when unset (fine for a laptop; set it in production so SECRET_KEY can change).
CLACKS_SECRETS_KEYS = [key.strip() for key in env_secret("CLACKS_SECRETS_KEY").split(",") if key.strip()]
# Public base URL of this server, shown in credentials and SDK snippets. Unset:
# pages show the address they were reached at, commands and notifications
# http://127.0.0.1:$PORT (organizations.endpoints.public_url).
CLACKS_PUBLIC_URL = env_str("CLACKS_PUBLIC_URL").rstrip("/")
# The port `make serve` binds gunicorn to (Makefile exports it to every command).
PORT = env_int("PORT", 8000, minimum=1)
# PostgreSQL: the events table is partitioned by UTC "month" or "day" of the
# event timestamp (telemetry.partitions); whole expired partitions are dropped.
CLACKS_PARTITION_INTERVAL = env_str("CLACKS_PARTITION_INTERVAL", "month")
if CLACKS_PARTITION_INTERVAL not in ("month", "day"):
    raise ImproperlyConfigured(f"CLACKS_PARTITION_INTERVAL={CLACKS_PARTITION_INTERVAL!r}: use month or day")
# Seconds a client is told to wait when storage is unavailable.
CLACKS_RETRY_AFTER_SECONDS = env_int("CLACKS_RETRY_AFTER_SECONDS", 5, minimum=1)
# The Properties page's summaries keep, per app and UTC day (or hour), at most
# this many data keys in all and per event type, this many distinct string
# values per key, compared on this many characters (docs/insights.md, Properties).
CLACKS_PROPERTY_KEYS = env_int("CLACKS_PROPERTY_KEYS", 200, minimum=1)
CLACKS_PROPERTY_KEYS_PER_TYPE = env_int("CLACKS_PROPERTY_KEYS_PER_TYPE", 50, minimum=1)
CLACKS_PROPERTY_VALUES = env_int("CLACKS_PROPERTY_VALUES", 50, minimum=1)
CLACKS_PROPERTY_VALUE_LENGTH = env_int("CLACKS_PROPERTY_VALUE_LENGTH", 100, minimum=1)

# --- Background jobs (telemetry.scheduler) ------------------------------------------

# On: gunicorn (config/gunicorn.py) runs `manage.py run_scheduler` beside its
# workers, so the periodic jobs need no cron. Off: for operators who run
# `manage.py run_scheduler` as a process or service of its own.
_scheduler = env_str("CLACKS_SCHEDULER", "on").lower()
if _scheduler not in ("on", "off", "true", "false", "1", "0"):
    raise ImproperlyConfigured(f"CLACKS_SCHEDULER={_scheduler!r}: use on or off")
CLACKS_SCHEDULER = _scheduler in ("on", "true", "1")
# Seconds between runs that replace a job's own period: "rollups=600,retention=86400".
CLACKS_SCHEDULER_PERIODS: dict[str, int] = {}
for _item in filter(None, (part.strip() for part in env_str("CLACKS_SCHEDULER_PERIODS").split(","))):
    _name, _, _seconds = _item.partition("=")
    if not _name.strip() or not _seconds.strip().isdigit() or int(_seconds) < 1:
        raise ImproperlyConfigured(f"CLACKS_SCHEDULER_PERIODS: {_item!r}: use job=seconds (at least 1)")
    CLACKS_SCHEDULER_PERIODS[_name.strip()] = int(_seconds)

# --- Alerts and notifications (alerts/) ---------------------------------------------

# Webhooks may reach private, loopback and link-local addresses only when this is
# set (alerts.outbound): a URL typed in the dashboard must not reach the server's network.
CLACKS_WEBHOOK_ALLOW_PRIVATE = env_bool("CLACKS_WEBHOOK_ALLOW_PRIVATE", False)
# Seconds to connect, and again to read the answer, per webhook call.
CLACKS_WEBHOOK_TIMEOUT_SECONDS = env_int("CLACKS_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
# A channel whose deliveries fail this many times in a row is disabled (a banner says so).
CLACKS_CHANNEL_MAX_FAILURES = env_int("CLACKS_CHANNEL_MAX_FAILURES", 10, minimum=1)
# Email channels exist when EMAIL_HOST is set (Django's own settings, same names).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set one at most")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "clacks@localhost")

# --- Plans and limits (telemetry.limits) -------------------------------------------


@dataclass(frozen=True)
class PlanDefaults:
    """One tier's limits as the environment gives them (telemetry.limits reads CLACKS_PLANS)."""

    requests_per_minute: int  # ingest requests each app may make per minute
    monthly_events: int  # new events the organization may store per calendar month (UTC); 0: no quota


# Per tier (the values of organizations.models.Tier): the defaults; a field set
# on the tier's Plan in the Django admin overrides them. Self-hosted
# organizations (the default tier) get a rate far above what one machine
# serves and no quota: the operator owns the hardware.
CLACKS_PLANS = {
    "free": PlanDefaults(
        requests_per_minute=env_int("CLACKS_PLAN_FREE_REQUESTS_PER_MINUTE", 100, minimum=1),
        monthly_events=env_int("CLACKS_PLAN_FREE_MONTHLY_EVENTS", 10_000, minimum=0),
    ),
    "pro": PlanDefaults(
        requests_per_minute=env_int("CLACKS_PLAN_PRO_REQUESTS_PER_MINUTE", 1_000, minimum=1),
        monthly_events=env_int("CLACKS_PLAN_PRO_MONTHLY_EVENTS", 1_000_000, minimum=0),
    ),
    "enterprise": PlanDefaults(
        requests_per_minute=env_int("CLACKS_PLAN_ENTERPRISE_REQUESTS_PER_MINUTE", 10_000, minimum=1),
        monthly_events=env_int("CLACKS_PLAN_ENTERPRISE_MONTHLY_EVENTS", 100_000_000, minimum=0),
    ),
    "self_hosted": PlanDefaults(
        requests_per_minute=env_int("CLACKS_PLAN_SELF_HOSTED_REQUESTS_PER_MINUTE", 60_000, minimum=1),
        monthly_events=env_int("CLACKS_PLAN_SELF_HOSTED_MONTHLY_EVENTS", 0, minimum=0),
    ),
}

# Start of the Redis keys holding the counters (they name apps and organizations
# by database id), so deployments sharing one Redis database keep apart.
CLACKS_REDIS_KEY_PREFIX = env_str("CLACKS_REDIS_KEY_PREFIX", "clacks")

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["drf_orjson_renderer.parsers.ORJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "telemetry.errors.exception_handler",
    # The REST API's OpenAPI document (api/schema.py; /api/v1/schema/).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The REST API (api/; README, "REST API"): requests per key per minute, shared by every
# worker (Redis when REDIS_URL is set, else the database), and its schema's settings.
CLACKS_API_REQUESTS_PER_MINUTE = env_int("CLACKS_API_REQUESTS_PER_MINUTE", 600, minimum=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "Clacks REST API",
    "DESCRIPTION": "Read an organization's analytics and events, export events, and manage apps (README, \"REST API\").",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI and Redoc from our own static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ScopeEnum": "api.models.Scope"},
    "PREPROCESSING_HOOKS": ["api.schema.only_api"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api.schema.add_shapes"],
}

# --- HTTPS behind a proxy (what `manage.py check --deploy` asks for) ----------------

# Set only when the proxy in front always sets this header itself, overwriting
# whatever the client sent: "HTTP_X_FORWARDED_PROTO,https".
SECURE_PROXY_SSL_HEADER = env_header_pair("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- Metrics ----------------------------------------------------------------------

# /metrics is open unless one of these is set; with both, both must pass.
CLACKS_METRICS_TOKEN = env_secret("CLACKS_METRICS_TOKEN")
CLACKS_METRICS_ALLOWED_IPS = env_networks("CLACKS_METRICS_ALLOWED_IPS")
# Label ingest event counters by app: one series per app, so only for a bounded number of apps.
CLACKS_METRICS_PER_APP = env_bool("CLACKS_METRICS_PER_APP", False)
# Where gunicorn workers write their metrics (set by config/gunicorn.py to var/prometheus
# unless given); /metrics sums the files. Empty outside gunicorn: one process, no files.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")

# --- Tracing (config/tracing.py) ---------------------------------------------------

# OpenTelemetry traces (request, view, SQL) go to this OTLP/HTTP endpoint when set,
# e.g. http://jaeger:4318; unset, tracing is off and config/tracing.py is never imported.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "clacks")
if OTEL_EXPORTER_OTLP_ENDPOINT:
    MIDDLEWARE.insert(MIDDLEWARE.index("config.middleware.request_log") + 1, "config.tracing.middleware")

# --- Logging --------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# Queries slower than this (milliseconds) are logged with their SQL; 0 turns it off.
CLACKS_SLOW_QUERY_MS = env_int("CLACKS_SLOW_QUERY_MS", 500, minimum=0)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One JSON object per line on stdout (config/logs.py); gunicorn's own lines match.
    "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
    "filters": {
        "tracebacks_only": {"()": "config.logs.TracebacksOnly"},
        "no_traceback_below_error": {"()": "config.logs.NoTracebackBelowError"},
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default console handler, which would print plain lines too.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # The request log has a line for every answer; Django's repeats each 4xx
        # and 5xx. Only its records of raised exceptions stay: unhandled errors with their
        # traceback; permission denials (403) as one WARNING line without it.
        "django.request": {
            "handlers": ["stdout"],
            "filters": ["tracebacks_only", "no_traceback_below_error"],
            "propagate": False,
        },
        # Its DEBUG lines carry query parameters: event payloads, token hashes.
        "django.db.backends": {"level": "INFO"},
        # django-axes narrates every failed sign-in at INFO; its WARNINGs (failures, lockouts) stay.
        "axes": {"level": "WARNING"},
    },
}

CLACKS_VERSION = "0.1.0"
