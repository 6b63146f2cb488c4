from django.apps import AppConfig


class TracesConfig(AppConfig):
    """The built-in trace store: recent spans kept in the shop's database, and its staff views (``/admin/traces/``)."""

    name = "traces"
    verbose_name = "Traces"
    default_auto_field = "django.db.models.BigAutoField"
