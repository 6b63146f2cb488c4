"""Settings of the mall shop: the one place that reads the environment.

A checkout without ``DJANGO_SECRET_KEY`` is a development checkout: DEBUG defaults on and an
insecure key is used. With a secret key set (production), DEBUG defaults off and HTTPS is
enforced unless ``DJANGO_SECURE_SSL_REDIRECT=0``.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
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


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """An integer setting; anything else is a configuration error naming the variable."""
    value = os.environ.get(name, "").strip() or str(default)
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return number


def env_choice(name: str, choices: set[str], default: str = "") -> str:
    """A lower-cased choice among ``choices`` (a comma list takes its first item, as the OTel SDK does)."""
    value = os.environ.get(name, "").strip().lower().split(",")[0].strip() or default
    if value and value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(sorted(choices))}")
    return value


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


DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
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
CHECKOUT_FAIL_STEP = os.environ.get("CHECKOUT_FAIL_STEP", "").strip() or None
if CHECKOUT_FAIL_STEP and not DEBUG and not env_bool("MALL_ALLOW_FAULT_INJECTION", False):
    raise ImproperlyConfigured("CHECKOUT_FAIL_STEP is a demo/test switch; it is refused with DEBUG off")
# Checkouts per user (DRF rate, e.g. "60/minute"); "off" disables it, e.g. for load tests.
CHECKOUT_THROTTLE_RATE = os.environ.get("CHECKOUT_THROTTLE_RATE", "60/minute").strip()
if CHECKOUT_THROTTLE_RATE.lower() in {"", "0", "off", "none"}:
    CHECKOUT_THROTTLE_RATE = None
# --- Following orders: "Open trace" links go to Jaeger when JAEGER_UI_URL is set (e.g. http://localhost:16686),
# else to the built-in trace view (/admin/traces/) when the trace store is on, else nowhere.
JAEGER_UI_URL = os.environ.get("JAEGER_UI_URL", "").strip().rstrip("/")
# The built-in store of recent spans: on by default when spans go to no collector (no OTLP endpoint).
_OTLP_ENDPOINT = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_TRACE_STORE = os.environ.get("MALL_TRACE_STORE", "").strip().lower()
if _TRACE_STORE not in {"", "on", "off", "1", "0", "true", "false", "yes", "no"}:
    raise ImproperlyConfigured(f"MALL_TRACE_STORE must be on or off, not {_TRACE_STORE!r}")
MALL_TRACE_STORE = env_bool("MALL_TRACE_STORE", not _OTLP_ENDPOINT)
# Its bounds, kept by the store itself: spans older than this many seconds, and beyond this many spans, go.
try:
    MALL_TRACE_STORE_RETENTION = int(os.environ.get("MALL_TRACE_STORE_RETENTION", str(24 * 3600)))
    MALL_TRACE_STORE_MAX_SPANS = int(os.environ.get("MALL_TRACE_STORE_MAX_SPANS", "200000"))
except ValueError:
    raise ImproperlyConfigured(
        "MALL_TRACE_STORE_RETENTION (seconds) and MALL_TRACE_STORE_MAX_SPANS must be whole numbers"
    ) from None


# --- Login guessing protection (django-axes, mall/auth.py): a username is locked for the cool-off
# after this many consecutive failed log-ins (token, browsable API, admin), the right password included.
def env_positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        raise ImproperlyConfigured(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


MALL_LOGIN_FAILURE_LIMIT = env_positive_int("MALL_LOGIN_FAILURE_LIMIT", 10)
MALL_LOGIN_COOLOFF_SECONDS = env_positive_int("MALL_LOGIN_COOLOFF_SECONDS", 900)
AUTHENTICATION_BACKENDS = ["mall.auth.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = MALL_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=MALL_LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username"]  # by username: other users (and other IPs' users) log in as usual
AXES_RESET_ON_SUCCESS = True  # consecutive failures: a successful log-in starts the count again
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lock ends one cool-off after it began
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # shared by every worker process
AXES_LOCKOUT_CALLABLE = "mall.auth.lockout_response"
AXES_VERBOSE = False

# --- OpenTelemetry (read by the SDK and mall/telemetry.py): a typo fails here, in one line, rather
# than silently exporting nothing or sampling with the default.
OTEL_EXPORTERS = {"otlp", "console", "none"}
env_choice("OTEL_TRACES_EXPORTER", OTEL_EXPORTERS)
env_choice("OTEL_METRICS_EXPORTER", OTEL_EXPORTERS)
env_choice("OTEL_EXPORTER_OTLP_PROTOCOL", {"grpc", "http/protobuf"})
OTEL_SAMPLERS = {"always_on", "always_off", "traceidratio"}
OTEL_TRACES_SAMPLER = env_choice("OTEL_TRACES_SAMPLER", OTEL_SAMPLERS | {f"parentbased_{s}" for s in OTEL_SAMPLERS})
if OTEL_TRACES_SAMPLER.endswith("traceidratio") and os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip():
    try:
        _ratio = float(os.environ["OTEL_TRACES_SAMPLER_ARG"])
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

# --- django-q2: ORM broker on the default database, or Redis when DJANGO_Q_REDIS_URL is set.
DJANGO_Q_REDIS_URL = os.environ.get("DJANGO_Q_REDIS_URL", "").strip()
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
        "mall": {"level": os.environ.get("MALL_LOG_LEVEL", "INFO")},
        "orders": {"level": os.environ.get("MALL_LOG_LEVEL", "INFO")},
        "django-q": {"level": "INFO"},
        # Only the key=value handler: Django's own console handler (DEBUG) would print each line twice.
        "django": {"handlers": [], "level": "INFO"},
    },
}
