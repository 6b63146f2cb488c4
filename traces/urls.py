"""The staff trace views, mounted under /admin/traces/ (admin site login, staff only)."""

from django.contrib import admin
from django.urls import path, re_path

from traces import pages

urlpatterns = [
    path("", admin.site.admin_view(pages.trace_list), name="trace-list"),
    path("monitor/", admin.site.admin_view(pages.monitor_page), name="trace-monitor"),  # before the trace id
    # 32 hex digits only: /admin/traces/tracespan/ (the admin's own page of this app's model) falls through.
    re_path(r"^(?P<trace_id>[0-9a-f]{32})/$", admin.site.admin_view(pages.trace_detail), name="trace-detail"),
]
