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
        from mall.telemetry import workers  # noqa: F401 (connects the task workers' telemetry set-up)
