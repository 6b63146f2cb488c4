"""The trace store's JSON API, mounted at /api/traces/: the search, the operations (monitor) and one trace."""

from django.urls import path, re_path

from traces import api, monitor_api

urlpatterns = [
    path("", api.TraceSearchView.as_view(), name="api-trace-search"),
    path("operations/", monitor_api.OperationsView.as_view(), name="api-trace-operations"),
    re_path(r"^(?P<trace_id>[0-9a-fA-F]{32})/$", monitor_api.TraceView.as_view(), name="api-trace-detail"),
]
