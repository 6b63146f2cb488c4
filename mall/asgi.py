"""ASGI entry point; telemetry is set up before the handler is built."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")

from mall.telemetry import configure_telemetry  # noqa: E402

configure_telemetry()

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
