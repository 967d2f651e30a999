"""EchoNest Analytics settings, read from the environment in this one place (12-factor).

Every variable is documented in `.env.example`. Unset `DATABASE_URL` means the
embedded SQLite file under `var/`; unset `REDIS_URL` means an in-process Redis
serves the live counters, the cache is process-local and Celery runs tasks
eagerly (no broker).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from . import schedules

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment "
            "(or DEBUG=true for local development, which uses a development key)."
        )
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "analytics",
    "streams",
    "streams.broadcast",
]

MIDDLEWARE = [
    # First, so a request's time covers every other middleware (echonest_analytics/metrics.py).
    "echonest_analytics.metrics.RequestMetricsMiddleware",
    # Batch ingestion takes a shorter way through this list (echonest_analytics/middleware.py).
    "echonest_analytics.middleware.IngestionFastPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "echonest_analytics.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "echonest_analytics.urls"
WSGI_APPLICATION = "echonest_analytics.wsgi.application"
ASGI_APPLICATION = "echonest_analytics.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "psql", "sqlite"}
_DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'echonest.sqlite3'}"
DATABASE_URL = env.str("DATABASE_URL", default="") or _DEFAULT_DATABASE_URL
_scheme = urlsplit(DATABASE_URL).scheme
if _scheme not in _DB_SCHEMES:
    raise ImproperlyConfigured(
        f"DATABASE_URL has an unsupported scheme {(_scheme or DATABASE_URL)!r}. "
        "Use postgres://user:password@host:5432/dbname or sqlite:///path/to/file.sqlite3, "
        "or leave it unset for the embedded SQLite file."
    )
_db = environ.Env.db_url_config(DATABASE_URL)
if _db["ENGINE"] == "django.db.backends.postgresql":
    if not _db.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://…/dbname).")
    _db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # Off by default: the check costs a round trip per request on the ingestion hot path.
    # A connection that died meanwhile fails one request with 503 + Retry-After (the
    # client retries with the same batchId) and Django then replaces it.
    _db["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    _db.setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=5
    )
else:
    VAR_DIR.mkdir(exist_ok=True)
    # Several processes (web, beat) share the file: wait for locks and take the
    # write lock up front so concurrent writers queue instead of failing.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}

# A streaming read replica of the PostgreSQL primary: the staff reports read from it,
# everything else (ingestion, jobs, every write) stays on the primary
# (echonest_analytics/db_router.py).
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL.")
    _replica = environ.Env.db_url_config(DATABASE_REPLICA_URL)
    if _replica["ENGINE"] != _db["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a postgres:// URL.")
    for _option in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS"):
        _replica[_option] = _db[_option]
    # Tests never create a database on a replica: they read the primary's.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["echonest_analytics.db_router.StaffReadsReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# Live counters are best effort: a slow or absent Redis must never stall ingestion.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
# After a Redis failure the request path skips Redis this long (echonest_analytics/redis.py).
REDIS_BREAKER_SECONDS = env.float("REDIS_BREAKER_SECONDS", default=5.0)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "echonest",
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A hung Redis broker must not hang whoever enqueues: short socket timeouts there too.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT * 4,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT * 4,
}
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT * 4
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_TIMEOUT * 4
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = schedules.CELERY_BEAT_SCHEDULE  # every periodic job, declared in code

# --- Product settings ---------------------------------------------------------

SESSION_TIMEOUT = env.int("SESSION_TIMEOUT", default=30 * 60)  # seconds, SPEC §6.1
HEARTBEAT_INTERVAL = env.int("HEARTBEAT_INTERVAL", default=15)  # seconds, SPEC §6.2
# How often the dashboard and the stream page re-read the live viewers (SPEC §6.5).
LIVE_VIEWERS_REFRESH_SECONDS = 15
# PostgreSQL work_mem for the aggregation transaction (its window sorts and hash joins).
AGGREGATION_WORK_MEM = env.str("AGGREGATION_WORK_MEM", default="64MB")
PLAYBACK_EVENT_RETENTION_DAYS = env.int("PLAYBACK_EVENT_RETENTION_DAYS", default=90)
PRODUCT_EVENT_RETENTION_DAYS = env.int("PRODUCT_EVENT_RETENTION_DAYS", default=90)
ROLLUP_RETENTION_DAYS = env.int("ROLLUP_RETENTION_DAYS", default=365)
# Month partitions of the raw event tables (PostgreSQL, SPEC §13) the daily upkeep keeps
# ready after the current month.
PARTITION_MONTHS_AHEAD = env.int("PARTITION_MONTHS_AHEAD", default=2)
ECHONEST_ADMIN_EMAILS = [e.strip().lower() for e in env.list("ECHONEST_ADMIN_EMAILS", default=[])]
ANALYTICS_DASH_KEY = env.str("ANALYTICS_DASH_KEY", default="")
BUNNY_API_KEY = env.str("BUNNY_API_KEY", default="")
BUNNY_LIBRARY_ID = env.str("BUNNY_LIBRARY_ID", default="")
BUNNY_API_BASE_URL = env.str("BUNNY_API_BASE_URL", default="https://video.bunnycdn.com")
BUNNY_TIMEOUT = env.float("BUNNY_TIMEOUT", default=10.0)  # seconds per request
BUNNY_RETRIES = env.int("BUNNY_RETRIES", default=4)  # on 429 and 5xx, with backoff
BUNNY_RETRY_BACKOFF = env.float("BUNNY_RETRY_BACKOFF", default=1.0)  # seconds, doubling
# Country of a viewer: a header set by a trusted proxy/CDN (e.g. CF-IPCountry) and/or a
# GeoIP2/GeoLite2 country database file. The client IP is only ever used in memory.
GEOIP_COUNTRY_HEADER = env.str("GEOIP_COUNTRY_HEADER", default="")
GEOIP_DATABASE_PATH = env.str("GEOIP_DATABASE_PATH", default="")
INGEST_MAX_BODY_BYTES = 256 * 1024
INGEST_THROTTLE_RATE = env.str("INGEST_THROTTLE_RATE", default="") or None

# Broadcast analytics (SPEC §9).
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
BROADCAST_POLL_TIMEOUT = env.float("BROADCAST_POLL_TIMEOUT", default=2.0)  # seconds per server
BROADCAST_REQUEST_EXPIRY_HOURS = env.int("BROADCAST_REQUEST_EXPIRY_HOURS", default=24)
BROADCAST_LOG_RETENTION_DAYS = env.int("BROADCAST_LOG_RETENTION_DAYS", default=90)
BROADCAST_INGEST_MAX_BODY_BYTES = 1024 * 1024

# --- HTTP API -------------------------------------------------------------------

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Only the anonymous endpoints that browsers call from other origins answer CORS.
CORS_URLS_REGEX = r"^/(analytics/events|api/analytics/event|api/streams/[^/]+)/?$"

REST_FRAMEWORK = {
    # Token first: DRF answers 401 (not 403) only when the first class names a
    # WWW-Authenticate scheme, and a missing or bad token is an authentication failure.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # `?format=csv` (or json, html) is the user's choice and wins over the Accept header.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "echonest_analytics.negotiation.FormatOverrideNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"ingest": INGEST_THROTTLE_RATE},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EchoNest Analytics API",
    "DESCRIPTION": "Self-hosted playback and product analytics for streaming products.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets are served from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several endpoints take a `period`, each with its own choices.
    "ENUM_NAME_OVERRIDES": {
        "RetentionPeriodEnum": ["day", "week"],
        "PlayPeriodEnum": ["all", "7d", "30d", "90d"],
        "ListenerPeriodEnum": ["1h", "24h", "7d"],
        "TrendPeriodEnum": ["week", "month"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "echonest_analytics.openapi.document_error_responses",
    ],
}

# --- Auth, i18n, static -----------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Third-party browser code comes from the npm registry (package.json, `npm ci`), served
# from our own static files under /static/vendor/.
_VENDOR_DIRS = [
    ("vendor/hls.js", BASE_DIR / "node_modules" / "hls.js" / "dist"),
    ("vendor/player.js", BASE_DIR / "node_modules" / "player.js" / "dist"),
]
# The demo stream's HLS video, generated by `manage.py seed_demo` with ffmpeg (never committed).
DEMO_HLS_DIR = VAR_DIR / "demo-hls"
STATICFILES_DIRS = [
    BASE_DIR / "static",  # the project's own (favicon)
    *[
        (prefix, path)
        for prefix, path in [*_VENDOR_DIRS, ("demo/hls", DEMO_HLS_DIR)]
        if path.is_dir()
    ],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production) ----------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from our own static files, never
# inline; every page's script is a file. Styles may be inline: the Django admin and
# Swagger UI write <style> blocks and style attributes, and CSS cannot run code. The
# watch page widens this for the players it embeds (streams/pages.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "media-src": [SELF, "blob:"],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Metrics -----------------------------------------------------------------------

# /metrics (Prometheus) answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it
# is off (404). gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR for its workers.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Logging -----------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"level": "WARNING"},
    },
}
