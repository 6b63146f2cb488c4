"""Django's own error views (``handler400``/``handler404``/``handler500``): JSON under /api/, pages elsewhere."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults

from mall.api.exceptions import request_too_large


def bad_request(request, exception=None):
    """Answer a 400 raised by Django itself (too many fields, ...): JSON under /api/; a body over the limit is 413."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(request_too_large(), status=413)
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "bad_request", "detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request, exception=None):
    """Answer 404 for URLs no view matched: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)
