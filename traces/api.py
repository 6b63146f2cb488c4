"""The trace store's JSON API (``GET /api/traces/``): thin DRF views over ``traces.search``."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from traces.permissions import MayViewTraces
from traces.search import TraceSearchForm, search_traces


class TraceSearchRootSerializer(serializers.Serializer):
    name = serializers.CharField()
    service = serializers.CharField()


class TraceSearchResultSerializer(serializers.Serializer):
    """One found trace (for the schema: the view answers with ``traces.search``'s dictionaries)."""

    trace_id = serializers.CharField()
    root = TraceSearchRootSerializer()
    start = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    span_count = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=["ok", "refusal", "error"])
    order_no = serializers.CharField()


class TraceSearchResultsSerializer(serializers.Serializer):
    results = TraceSearchResultSerializer(many=True)


def _parameters() -> list[OpenApiParameter]:
    form = TraceSearchForm()
    return [
        OpenApiParameter(
            name, str if name not in ("limit",) else int, description=str(field.help_text or field.label or "")
        )
        for name, field in form.fields.items()
    ]


class TraceSearchView(APIView):
    """Search the stored traces: ``?operation=&order_no=&outcome=&min_duration_ms=&...`` (see docs/api.md)."""

    permission_classes = [MayViewTraces]

    @extend_schema(operation_id="traces_search", parameters=_parameters(), responses=TraceSearchResultsSerializer)
    def get(self, request):
        form = TraceSearchForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form_errors(form))
        return Response({"results": search_traces(form.query())})


def form_errors(form) -> dict:
    """A form's errors as DRF's ValidationError takes them: {field: [messages]}, "parameters" for the rest."""
    errors = {name: list(messages) for name, messages in form.errors.items()}
    if "__all__" in errors:
        errors["parameters"] = errors.pop("__all__")
    return errors
