"""The one place where errors become HTTP responses: ``{"code": ..., "detail": ...}`` always."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mall.errors import DomainError

logger = logging.getLogger("mall.api")


def request_too_large() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "code": "request_too_large",
        "detail": f"The request body is larger than the limit of {limit} bytes ({limit // 1024} KB).",
        "limit": limit,
    }


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(request_too_large(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # Lost connection, lock wait timeout or deadlock after the service's own retries:
        # the transaction was rolled back, so the client may safely retry.
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"code": "database_unavailable", "detail": "The database is unavailable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, DatabaseError):
        return None  # a bug, not bad input: let it surface as a 500 and in the trace
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": response.data}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    else:  # Http404 / PermissionDenied mapped by DRF
        code = "not_found" if response.status_code == 404 else "permission_denied"
        response.data = {"code": code, "detail": response.data.get("detail", "")}
    return response


class IdConverter:
    """A database id in a URL: up to 18 digits, so it always fits a 64-bit integer column."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


def bad_request(request, exception=None):
    """400 raised by Django itself (too many fields, ...): JSON under /api/; a body over the size limit is 413."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(request_too_large(), status=413)
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "bad_request", "detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


ERROR_RESPONSES = {
    "400": "Invalid input or a refused request",
    "401": "Not authenticated",
    "403": "Not allowed",
    "404": "Not found (or not yours)",
    "413": "Request body over the size limit",
    "415": "Unsupported media type",
    "409": "Conflict with the shop's state",
    "429": "Throttled",
    "503": "Database unavailable; retry",
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular hook: every operation documents the JSON error shape ``{"code","detail"}``."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["code", "detail"],
        "additionalProperties": True,
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for status_code, description in ERROR_RESPONSES.items():
                operation["responses"].setdefault(status_code, {"description": description, "content": error})
    return result


def not_found(request, exception=None):
    """404 for URLs no view matched: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)
