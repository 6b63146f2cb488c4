"""The one place where exceptions raised under DRF become HTTP responses: ``{"code": ..., "detail": ...}`` always.

Domain errors carry a ``code`` and no HTTP: ``STATUS_BY_ERROR`` gives each error class its status.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from carts.errors import CartEmpty, CartFull, CartItemGone, CartLineTooLarge
from faults.errors import CheckoutFaultInjected, FaultInjected
from goods.errors import GoodsNotFound, GoodsUnavailable
from inventory.errors import InsufficientStock, StockChanged, StockLimitExceeded
from mall.errors import DomainError, LoginLocked
from orders.errors import IdempotencyKeyReused, OrderEnded, OrderNotPending, OrderTooLarge

logger = logging.getLogger("mall.api")

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    # goods
    GoodsNotFound: status.HTTP_400_BAD_REQUEST,
    GoodsUnavailable: status.HTTP_409_CONFLICT,
    # inventory
    InsufficientStock: status.HTTP_409_CONFLICT,
    StockChanged: status.HTTP_409_CONFLICT,
    StockLimitExceeded: status.HTTP_400_BAD_REQUEST,
    # carts
    CartEmpty: status.HTTP_400_BAD_REQUEST,
    CartLineTooLarge: status.HTTP_400_BAD_REQUEST,
    CartFull: status.HTTP_400_BAD_REQUEST,
    CartItemGone: status.HTTP_404_NOT_FOUND,  # a cart line a checkout took meanwhile
    # orders
    OrderNotPending: status.HTTP_409_CONFLICT,
    OrderEnded: status.HTTP_409_CONFLICT,
    IdempotencyKeyReused: status.HTTP_409_CONFLICT,
    OrderTooLarge: status.HTTP_400_BAD_REQUEST,
    CheckoutFaultInjected: status.HTTP_503_SERVICE_UNAVAILABLE,
    # faults (manage.py faults set pay_order|cancel_order|close_unpaid_order --error)
    FaultInjected: status.HTTP_503_SERVICE_UNAVAILABLE,
    # log-in (mall.auth)
    LoginLocked: status.HTTP_429_TOO_MANY_REQUESTS,
}


def status_for(error: DomainError) -> int:
    """Return a domain error's HTTP status, found by its class (or a base class); an unlisted error is a refusal (400).

    Keyed by class rather than by code so that two errors sharing a code cannot silently share a status.
    """
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return status.HTTP_400_BAD_REQUEST


def request_too_large() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "code": "request_too_large",
        "detail": f"The request body is larger than the limit of {limit} bytes ({limit // 1024} KB).",
        "limit": limit,
    }


def exception_handler(exc, context):
    """Answer a raised exception (DRF's ``EXCEPTION_HANDLER``)."""
    if isinstance(exc, RequestDataTooBig):
        return Response(request_too_large(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DomainError):
        retry_after = getattr(exc, "retry_after", None)  # seconds, for the refusals that end by themselves
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return Response(exc.as_dict(), status=status_for(exc), headers=headers)
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
