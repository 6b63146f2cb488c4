"""The trace store's JSON API, mounted at /api/traces/ (search here; the operations and one trace join it)."""

from django.urls import path

from traces import api

urlpatterns = [
    path("", api.TraceSearchView.as_view(), name="api-trace-search"),
]
