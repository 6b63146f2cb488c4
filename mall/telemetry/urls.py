"""The staff trace views, mounted under /admin/traces/ (admin site login, staff only)."""

from django.contrib import admin
from django.urls import path

from mall.telemetry import views

urlpatterns = [
    path("", admin.site.admin_view(views.trace_list), name="trace-list"),
    path("<str:trace_id>/", admin.site.admin_view(views.trace_detail), name="trace-detail"),
]
