"""The staff trace views, mounted under /admin/traces/ (admin site login, staff only)."""

from django.contrib import admin
from django.urls import path, re_path

from traces import views

urlpatterns = [
    path("", admin.site.admin_view(views.trace_list), name="trace-list"),
    # 32 hex digits only: /admin/traces/tracespan/ (the admin's own page of this app's model) falls through.
    re_path(r"^(?P<trace_id>[0-9a-f]{32})/$", admin.site.admin_view(views.trace_detail), name="trace-detail"),
]
