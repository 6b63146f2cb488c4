"""Which requests the Django instrumentation leaves untraced: asset requests, unless the environment says otherwise.

``OTEL_PYTHON_DJANGO_EXCLUDED_URLS`` (or the generic ``OTEL_PYTHON_EXCLUDED_URLS``), as the
instrumentation reads them: comma-separated regular expressions searched in the request's URL
without its query string (``http://host/static/admin/css/base.css``). Unset, the default below
applies; set blank, every request is traced.
"""

import re

from mall.env import env_str

# Assets a browser fetches by itself beside the shop's pages; none of them is the shop's work.
_ASSET_PATHS = ("/favicon.ico", "/robots.txt")
_ADMIN_JSI18N = "/admin/jsi18n/"  # the admin's JavaScript catalog, fetched by every admin form page


def default_excluded_urls(static_url: str) -> str:
    """The patterns excluded when no variable is set: static files under ``static_url``, favicon, jsi18n..."""
    host = r"^[a-z][a-z0-9+.-]*://[^/]+"
    patterns = [host + re.escape(path) + "$" for path in _ASSET_PATHS]
    patterns.append(host + r"/apple-touch-icon[^/]*\.png$")
    patterns.append(host + re.escape(_ADMIN_JSI18N) + "$")
    if static_url and "://" not in static_url:  # an external static host is never this process's request
        patterns.append(host + re.escape("/" + static_url.strip("/") + "/"))
    return ",".join(patterns)


def excluded_urls() -> str:
    """The ``excluded_urls`` to give ``DjangoInstrumentor().instrument()`` (the environment's, else the default)."""
    from django.conf import settings

    default = default_excluded_urls(settings.STATIC_URL or "")
    return env_str("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", env_str("OTEL_PYTHON_EXCLUDED_URLS", default))
