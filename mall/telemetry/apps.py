from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    """The built-in trace store and its admin views (``/admin/traces/``); telemetry in task workers."""

    name = "mall.telemetry"
    label = "telemetry"
    verbose_name = "Traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mall.telemetry import workers  # noqa: F401 (connects the task workers' set-up)
