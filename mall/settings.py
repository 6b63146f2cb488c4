"""Settings of the mall shop: the one place that reads the environment.

A checkout without ``DJANGO_SECRET_KEY`` is a development checkout: DEBUG defaults on and an
insecure key is used. With a secret key set (production), DEBUG defaults off and HTTPS is
enforced unless ``DJANGO_SECURE_SSL_REDIRECT=0``.
"""

import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from mall.env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEV_CHECKOUT = not SECRET_KEY
if DEV_CHECKOUT:
    SECRET_KEY = "django-insecure-development-only-key-set-DJANGO_SECRET_KEY-in-production"
DEBUG = env_bool("DJANGO_DEBUG", DEV_CHECKOUT)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "mall.apps.MallAdminConfig",  # django.contrib.admin, titled "mall admin"
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "goods",
    "inventory",
    "carts",
    "orders",
    "mall.apps.MallConfig",  # the commands that span the apps: seed_demo, check_stock
    "traces",  # the built-in trace store and its views
    "faults",  # fault rules switched on while the shop runs (manage.py faults)
]

MIDDLEWARE = [
    "mall.middleware.TraceContextOnRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "mall.middleware.ApiNotFoundMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mall.auth.LoginFormThrottleMiddleware",  # the log-in forms' per-address rate, before axes counts a failure
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out log-in into mall.auth's 429
]

ROOT_URLCONF = "mall.urls"
WSGI_APPLICATION = "mall.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],  # templates/admin/: the admin's layout tweaks
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


def database_from_url(url: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError:  # the URL itself is not shown: it may hold a password
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL (expected sqlite:///path or mysql://user:password@host:port/name)"
        ) from None
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # Parallel checkouts queue on the writer lock (BEGIN IMMEDIATE + busy timeout)
        # instead of failing with "database is locked"; WAL lets readers run meanwhile.
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not Django's shared-cache in-memory default, so test threads queue on the lock too.
        config["TEST"] = {"NAME": str(Path(config["NAME"]).with_name("test_" + Path(config["NAME"]).name))}
    elif engine == "django.db.backends.mysql":
        config["OPTIONS"] = {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            # Row-lock waits surface as OperationalError 1205 after this many seconds.
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', innodb_lock_wait_timeout=10",
        }
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    else:
        raise ImproperlyConfigured(f"DATABASE_URL: unsupported database engine {engine!r}")
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve the admin/browsable-API assets without a separate collectstatic step in small setups.
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # API bodies are small; refuse anything larger

# --- Security: HTTPS by default when DEBUG is off; 0 serves plain HTTP (behind a TLS proxy, load tests).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# X-Forwarded-Proto is trusted only behind a proxy that sets it (and strips a client's own):
# otherwise any client could claim HTTPS.
DJANGO_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if DJANGO_BEHIND_PROXY else None
# How many proxies in front of the shop append the client's address to X-Forwarded-For (deploy/nginx: 1).
# 0: the header is ignored and the peer's address counts, as it must when clients connect directly (a
# client could write any address there). The log-in lock (axes) and the throttles read it the same way.
MALL_TRUSTED_PROXIES = env_int("MALL_TRUSTED_PROXIES", 0)
AXES_CLIENT_IP_CALLABLE = "mall.edge.client_address"  # django-ipware is not installed: axes' IPWARE_* unused
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = 31_536_000 if SECURE_SSL_REDIRECT else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL_REDIRECT
SECURE_HSTS_PRELOAD = SECURE_SSL_REDIRECT
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters when DEBUG is off")

# --- Shop behaviour
ORDER_PAY_TIMEOUT = env_int("ORDER_PAY_TIMEOUT", 1800, minimum=1)
MAX_CART_LINE_NUMS = 9_999
MAX_CART_LINES = 100
# Attempts of a write that lost a deadlock or a lock wait (checkout, cart, cancel, close, sweep, stock edit):
# mall.db.retry_on_lock_conflict runs it again, up to this many times in all.
LOCK_CONFLICT_ATTEMPTS = 3
# Faults at run time (``manage.py faults``, the admin): refused, and stored rules ignored, unless DEBUG is
# on or this is set. CHECKOUT_FAIL_STEP is a rule set at start: the named checkout step always fails.
MALL_ALLOW_FAULT_INJECTION = env_bool("MALL_ALLOW_FAULT_INJECTION", False)
CHECKOUT_FAIL_STEP = env_str("CHECKOUT_FAIL_STEP") or None
if CHECKOUT_FAIL_STEP and not DEBUG and not MALL_ALLOW_FAULT_INJECTION:
    raise ImproperlyConfigured("CHECKOUT_FAIL_STEP is a demo/test switch; it is refused with DEBUG off")
# Checkouts per user (DRF rate, e.g. "60/minute"); "off" disables it, e.g. for load tests.
CHECKOUT_THROTTLE_RATE = env_str("CHECKOUT_THROTTLE_RATE", "60/minute")
if CHECKOUT_THROTTLE_RATE.lower() in {"", "0", "off", "none"}:
    CHECKOUT_THROTTLE_RATE = None
# --- The gRPC order service (python manage.py grpcserver): its address, worker threads and the grace
# a SIGTERM gives calls in flight (seconds).
MALL_GRPC_BIND = env_str("MALL_GRPC_BIND").strip() or "127.0.0.1:9500"
if ":" not in MALL_GRPC_BIND:
    raise ImproperlyConfigured(f"MALL_GRPC_BIND must be HOST:PORT, got {MALL_GRPC_BIND!r}")
MALL_GRPC_THREADS = env_int("MALL_GRPC_THREADS", 8, minimum=1)
MALL_GRPC_GRACE = env_int("MALL_GRPC_GRACE", 10, minimum=0)
# --- Following orders: "Open trace" links go to Jaeger when JAEGER_UI_URL is set (e.g. http://localhost:16686),
# else to the built-in trace view (/admin/traces/) when the trace store is on, else nowhere.
JAEGER_UI_URL = env_str("JAEGER_UI_URL").rstrip("/")
# Where the shop is served (e.g. http://127.0.0.1:8000, the banner's base URL): an in-process
# `manage.py place_test_orders` prints absolute built-in trace links on it (with --url, that URL).
MALL_SHOP_URL = env_str("MALL_SHOP_URL").rstrip("/")
# The built-in store of recent spans: on by default when spans go to no collector (no OTLP endpoint).
_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT") or env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
MALL_TRACE_STORE = env_bool("MALL_TRACE_STORE", not _OTLP_ENDPOINT)
# Its bounds, kept by the store itself: spans older than this many seconds, and beyond this many spans, go.
MALL_TRACE_STORE_RETENTION = env_int("MALL_TRACE_STORE_RETENTION", 24 * 3600)  # seconds
MALL_TRACE_STORE_MAX_SPANS = env_int("MALL_TRACE_STORE_MAX_SPANS", 200_000)
# Client address and port, User-Agent and URL query strings in spans (stored and exported): off unless 1.
MALL_TRACE_PERSONAL_DATA = env_bool("MALL_TRACE_PERSONAL_DATA", False)
# An incoming traceparent (HTTP and gRPC, mall/telemetry/edge_context.py): "trust" continues the caller's trace
# (internal callers, the load tool); "link" starts the shop's own trace, sampled by its own sampler, with a span
# link to the caller's span, so no caller forces sampling or chooses a stored trace id (a public endpoint).
MALL_TRACEPARENT = env_choice("MALL_TRACEPARENT", {"trust", "link"}, "trust")


# Upstream's SQL commenter (DjangoInstrumentor's is_sql_commentor_enabled): appends the route, the view and
# the traceparent to each request's SQL, so slow-query logs lead to traces. Which keys it writes: upstream's
# SQLCOMMENTER_WITH_* settings (FRAMEWORK, CONTROLLER, ROUTE, APP_NAME, OPENTELEMETRY, DB_DRIVER), all on.
MALL_SQLCOMMENTER = env_bool("MALL_SQLCOMMENTER", False)
if env_str("OTEL_PYTHON_DJANGO_SQLCOMMENTER").strip() and not env_str("MALL_SQLCOMMENTER").strip():
    # The shop's earlier name for the switch (an invented OTEL_ one): honoured, with a warning, for now.
    warnings.warn(
        "OTEL_PYTHON_DJANGO_SQLCOMMENTER is deprecated: set MALL_SQLCOMMENTER instead", FutureWarning, stacklevel=1
    )
    MALL_SQLCOMMENTER = env_bool("OTEL_PYTHON_DJANGO_SQLCOMMENTER", False)


# --- Login guessing protection (django-axes, mall/auth.py): a username is locked for the cool-off, for the
# address that failed, after this many consecutive failed log-ins (token, browsable API, admin) from it, the
# right password included; each failure the limit allows answers "wrong password", the next attempt 429.
MALL_LOGIN_FAILURE_LIMIT = env_int("MALL_LOGIN_FAILURE_LIMIT", 10, minimum=1)
MALL_LOGIN_COOLOFF_SECONDS = env_int("MALL_LOGIN_COOLOFF_SECONDS", 900, minimum=1)
# Log-in attempts per client address (token endpoint and both log-in forms, one count; DRF rate, in the shared
# "throttle" cache): 429 `throttled` with Retry-After past it, whatever usernames are tried; "off" disables it.
MALL_LOGIN_THROTTLE_RATE = env_str("MALL_LOGIN_THROTTLE_RATE", "30/minute")
if MALL_LOGIN_THROTTLE_RATE.lower() in {"", "0", "off", "none"}:
    MALL_LOGIN_THROTTLE_RATE = None
AUTHENTICATION_BACKENDS = ["mall.auth.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = MALL_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=MALL_LOGIN_COOLOFF_SECONDS)
# By username and address together: a guesser locks that account for its own address only, so an anonymous
# client cannot lock the real user (or admin) out; other users and other addresses log in as usual.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # consecutive failures: a successful log-in starts the count again
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lock ends one cool-off after it began
AXES_HANDLER = "mall.auth.LockAfterTheLimitHandler"  # axes' database handler: shared by every worker process
AXES_LOCKOUT_CALLABLE = "mall.auth.lockout_response"
AXES_VERBOSE = False

# --- OpenTelemetry (read by the SDK and mall/telemetry/): a typo fails here, in one line, rather
# than silently exporting nothing or sampling with the default.
OTEL_EXPORTERS = {"otlp", "console", "none"}
env_choice("OTEL_TRACES_EXPORTER", OTEL_EXPORTERS)
env_choice("OTEL_METRICS_EXPORTER", OTEL_EXPORTERS)
env_choice("OTEL_EXPORTER_OTLP_PROTOCOL", {"grpc", "http/protobuf"})
OTEL_SAMPLERS = {"always_on", "always_off", "traceidratio"}
OTEL_TRACES_SAMPLER = env_choice("OTEL_TRACES_SAMPLER", OTEL_SAMPLERS | {f"parentbased_{s}" for s in OTEL_SAMPLERS})
if OTEL_TRACES_SAMPLER.endswith("traceidratio") and env_str("OTEL_TRACES_SAMPLER_ARG"):
    try:
        _ratio = float(env_str("OTEL_TRACES_SAMPLER_ARG"))
    except ValueError:
        _ratio = -1.0
    if not 0.0 <= _ratio <= 1.0:
        raise ImproperlyConfigured("OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1")

# --- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated API calls get 401 with "WWW-Authenticate: Token".
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mall.api.exceptions.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "NUM_PROXIES": MALL_TRUSTED_PROXIES,  # DRF's default (None) would take any client's X-Forwarded-For
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mall API",
    "DESCRIPTION": "A shop whose checkout is traced end to end with OpenTelemetry.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mall.api.schema.document_error_responses",
    ],
}

# --- Caches. "throttle" holds the checkout throttle's counts (CHECKOUT_THROTTLE_RATE): shared by every
# worker process, so the rate is per user across the whole shop. In the database by default (the table
# of migration mall 0001), in Redis when MALL_CACHE_REDIS_URL is set (e.g. redis://127.0.0.1:6379/1; a
# database of its own, not the task broker's). Nothing else is cached: "default" stays per process.
MALL_CACHE_REDIS_URL = env_str("MALL_CACHE_REDIS_URL").strip()
THROTTLE_CACHE_TABLE = "mall_throttle_cache"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": MALL_CACHE_REDIS_URL}
        if MALL_CACHE_REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": THROTTLE_CACHE_TABLE,
            # One row per user who checked out in the last minute: culling (at 300 rows by default) would
            # forget some users' counts and let them past the throttle.
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    ),
}

# --- django-q2: ORM broker on the default database, or Redis when DJANGO_Q_REDIS_URL is set.
DJANGO_Q_REDIS_URL = env_str("DJANGO_Q_REDIS_URL")
Q_CLUSTER = {
    "name": "mall",
    "workers": env_int("DJANGO_Q_WORKERS", 2, minimum=1),
    # A close takes milliseconds; timeout < retry so a slow task is never re-delivered while it runs.
    "timeout": 60,
    "retry": 120,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Tasks",
}
if DJANGO_Q_REDIS_URL:
    Q_CLUSTER["redis"] = DJANGO_Q_REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# django_q's conditional index is not supported by MariaDB; it is an optimisation only.
SILENCED_SYSTEM_CHECKS = ["models.W037"]
# Log-ins are locked per username on purpose: rotating IPs, user agents or cookies does not lift it.
SILENCED_SYSTEM_CHECKS.append("axes.W006")

MALL_LOG_LEVEL = env_choice("MALL_LOG_LEVEL", {"debug", "info", "warning", "error", "critical"}, "info").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace_context": {"()": "mall.telemetry.TraceContextFilter"}},
    "formatters": {
        "keyvalue": {
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s "
            "trace_id=%(trace_id)s span_id=%(span_id)s msg=%(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "keyvalue",
            "filters": ["trace_context"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "mall": {"level": MALL_LOG_LEVEL},
        "orders": {"level": MALL_LOG_LEVEL},
        "django-q": {"level": "INFO"},
        # Only the key=value handler: Django's own console handler (DEBUG) would print each line twice.
        "django": {"handlers": [], "level": "INFO"},
    },
}
