from django.contrib.admin.apps import AdminConfig


class MallAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the shop's own site (``mall.admin.MallAdminSite``) as ``admin.site``."""

    default_site = "mall.admin.MallAdminSite"
