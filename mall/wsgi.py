"""WSGI entry point (gunicorn ``mall.wsgi``); telemetry is set up before the handler is built."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")

from mall.startup import load_settings_or_exit  # noqa: E402

load_settings_or_exit()

from mall.telemetry import configure_telemetry  # noqa: E402

configure_telemetry()

from django.core.wsgi import get_wsgi_application  # noqa: E402

from mall.edge import DrainUnreadBody  # noqa: E402

# A refusal given before the body was read leaves the keep-alive connection usable (mall/edge.py).
application = DrainUnreadBody(get_wsgi_application())
