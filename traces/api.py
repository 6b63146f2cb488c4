"""The trace store's JSON API (``GET /api/traces/``): thin DRF views over ``traces.search``."""

from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from traces.permissions import may_view_traces
from traces.search import TraceSearchForm, search_traces


class MayViewTraces(BasePermission):
    """Let in the users with the store's view permission (``is_staff`` alone is not enough)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and may_view_traces(request.user))


class TraceSearchView(APIView):
    """Search the stored traces: ``?operation=&order_no=&outcome=&min_duration_ms=&...`` (see docs/api.md)."""

    permission_classes = [MayViewTraces]

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
