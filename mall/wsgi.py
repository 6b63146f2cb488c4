"""WSGI entry point (gunicorn ``mall.wsgi``); telemetry is set up before the handler is built."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")

from mall.telemetry import configure_telemetry  # noqa: E402

configure_telemetry()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
