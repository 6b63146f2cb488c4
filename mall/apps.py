from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MallAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the shop's own site (``mall.admin.MallAdminSite``) as ``admin.site``."""

    default_site = "mall.admin.MallAdminSite"


class MallConfig(AppConfig):
    """The project package as an app, for the commands that span the apps (``mall/management/commands``)."""

    name = "mall"
    verbose_name = "mall"

    def ready(self) -> None:
        from django.contrib import admin

        from mall.patches import apply_patches
        from mall.schedule_admin import use_superuser_schedule_admin
        from mall.telemetry import workers  # noqa: F401 (connects the task workers' telemetry set-up)

        # After the admin's autodiscover (its app comes first in INSTALLED_APPS), which registered django-q2's own.
        use_superuser_schedule_admin(admin.site)
        apply_patches()  # fails here, at start-up, when an upgrade removed a patched attribute
