"""JSON for scripts: the monitor's operations (``GET /api/traces/operations/``) and one trace explained
(``GET /api/traces/<trace_id>/``). Staff holding the trace store's view permission only."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from traces.detail import TRACE_ID, explain_trace, trace_json
from traces.monitor import DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW, monitor
from traces.permissions import MayViewTraces


class WindowSerializer(serializers.Serializer):
    window = serializers.IntegerField(min_value=MIN_WINDOW, max_value=MAX_WINDOW, default=DEFAULT_WINDOW)


class OperationsView(APIView):
    """Each operation of the last ``window`` seconds: count, errors, refusals, p50/p95/p99 ms, per minute."""

    permission_classes = [MayViewTraces]

    @extend_schema(
        operation_id="traces_operations",
        parameters=[OpenApiParameter("window", int, description=f"seconds, {MIN_WINDOW}…{MAX_WINDOW}")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        params = WindowSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(monitor(window=params.validated_data["window"], series=False).as_json())


class TraceView(APIView):
    """One stored trace: its spans in tree order with their self time, attributes, events and links."""

    permission_classes = [MayViewTraces]

    @extend_schema(operation_id="traces_trace", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, trace_id: str):
        trace = explain_trace(trace_id.lower(), with_history=False) if TRACE_ID.fullmatch(trace_id.lower()) else None
        if trace is None:
            raise NotFound(f"Trace {trace_id} is not in the store (it keeps recent spans only).")
        return Response(trace_json(trace))
