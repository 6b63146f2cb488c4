from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    """The built-in trace store and its admin views (``/admin/traces/``)."""

    name = "mall.telemetry"
    label = "telemetry"
    verbose_name = "Traces"
    default_auto_field = "django.db.models.BigAutoField"
