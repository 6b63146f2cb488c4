"""The order service over gRPC (``mall.order.v1.Order``): a second thin transport beside the REST API.

Each call: authenticate the metadata's token, validate the message, call one service or selector,
shape the answer. Refusals and faults become status codes through ``mall.api.grpc_status`` only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from types import SimpleNamespace

import grpc
from django.db import InterfaceError, OperationalError, close_old_connections
from google.protobuf.message import DecodeError
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from mall.api.grpc_status import ERROR_CODE_METADATA_KEY, FAULT_STATUSES, grpc_status_for
from mall.errors import DomainError
from orders.checkout import create_order
from orders.grpc import order_pb2, order_pb2_grpc
from orders.models import IDEMPOTENCY_KEY_MAX_LENGTH, Order
from orders.selectors import orders_of
from orders.serializers import CheckoutSerializer
from orders.services import cancel_order, pay_order
from orders.views import CheckoutRateThrottle

logger = logging.getLogger("mall.grpc")

ADD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# What the original's client saw as PayType: payment is simulated here, so one value for a paid order.
PAID_PAY_TYPE = "simulated"


class _Malformed:
    """Stands for a request whose bytes are not its message (see ``order_service_handler``)."""


MALFORMED = _Malformed()


def order_service_handler(servicer: OrderServicer) -> grpc.GenericRpcHandler:
    """Build the ``Order`` service's handlers as the generated ``add_OrderServicer_to_server`` makes them, but
    with a request that does not parse reaching the servicer as ``MALFORMED`` (INVALID_ARGUMENT) instead
    of an exception inside gRPC."""
    service = order_pb2.DESCRIPTOR.services_by_name["Order"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=_lenient(getattr(order_pb2, method.input_type.name).FromString),
            response_serializer=order_pb2.OrderInfoResponse.SerializeToString,
        )
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _lenient(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def deserialize(data: bytes):
        try:
            return parse(data)
        except DecodeError:
            return MALFORMED

    return deserialize


class CallRefused(Exception):
    """The transport refused a call before any service ran (token, user id, fields, throttle)."""

    def __init__(self, code: str, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(detail)


class OrderServicer(order_pb2_grpc.OrderServicer):
    def CreateGoodsOrder(self, request, context):  # noqa: N802 - the generated base class's names
        return _serve(context, request, _create_goods_order)

    def OrderDetail(self, request, context):  # noqa: N802
        return _serve(context, request, _order_detail)

    def PayOrder(self, request, context):  # noqa: N802
        return _serve(context, request, _pay_order)

    def CancelOrder(self, request, context):  # noqa: N802
        return _serve(context, request, _cancel_order)


def _serve(context: grpc.ServicerContext, request, handler: Callable) -> order_pb2.OrderInfoResponse:
    """Run ``handler(user, request, context)`` for an authenticated caller as Django runs a request:
    stale database connections closed before and after. Every refusal or fault becomes a status."""
    close_old_connections()
    try:
        if request is MALFORMED:
            raise CallRefused("malformed", "The request is not a valid protobuf message of this method.")
        user = _authenticate(context)
        _check_user_id(user, request.user_id)
        return handler(user, request, context)
    except CallRefused as refused:
        return _refuse(context, refused.code, refused.detail)
    except DomainError as error:
        return _refuse(context, error.code, error.detail, extra=error.extra)
    except (OperationalError, InterfaceError) as exc:
        # Lost connection, lock wait timeout or deadlock after the service's own retries: rolled back, retryable.
        logger.warning("database unavailable: %s", exc)
        return _refuse(context, "database_unavailable", "The database is unavailable; retry shortly.")
    except Exception:
        logger.exception("gRPC call with a %s failed", type(request).__name__)
        return _refuse(context, "internal_error", "The shop failed on this call.")
    finally:
        close_old_connections()


def _refuse(context, code: str, detail: str, *, extra: dict | None = None) -> order_pb2.OrderInfoResponse:
    status = grpc_status_for(code)
    context.set_code(status)
    context.set_details(f"{detail} {json.dumps(extra)}" if extra else detail)
    context.set_trailing_metadata(((ERROR_CODE_METADATA_KEY, code),))
    if status not in FAULT_STATUSES:
        logger.info("gRPC call refused: %s", code)
    return order_pb2.OrderInfoResponse()


def _metadata(context, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _authenticate(context):
    """Find the user of the metadata's ``authorization: Token <key>`` (the REST API's tokens)."""
    header = _metadata(context, "authorization")
    if not header:
        raise CallRefused("not_authenticated", "The metadata 'authorization: Token <key>' is required.")
    keyword, _, key = header.strip().partition(" ")
    if keyword.lower() != "token" or not key.strip() or " " in key.strip():
        raise CallRefused("authentication_failed", "The authorization metadata must be 'Token <key>'.")
    try:
        user, _token = TokenAuthentication().authenticate_credentials(key.strip())
    except AuthenticationFailed as exc:
        raise CallRefused("authentication_failed", str(exc.detail)) from None
    return user


def _check_user_id(user, user_id: int) -> None:
    """Refuse a payload user id other than the token's (0 stands for the token's user): it is never trusted."""
    if user_id not in (0, user.pk):
        raise CallRefused("permission_denied", "user_id is not the authenticated user (0 means the token's user).")


def _create_goods_order(user, request: order_pb2.OrderRequest, context) -> order_pb2.OrderInfoResponse:
    serializer = CheckoutSerializer(
        data={
            "address": request.address,
            "signer_name": request.username,
            "signer_mobile": request.mobile,
            "post": request.post,
            "note": request.note,
        }
    )
    if not serializer.is_valid():
        raise CallRefused("invalid", f"Invalid input: {json.dumps(serializer.errors)}")
    key = (_metadata(context, "idempotency-key") or "").strip() or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise CallRefused("invalid", f"idempotency-key: at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters.")
    if not CheckoutRateThrottle().allow_request(SimpleNamespace(user=user, META={}), None):
        raise CallRefused("throttled", "Too many checkouts; retry later.")
    result = create_order(user=user, idempotency_key=key, **serializer.validated_data)
    return _order_info(result.order, lines=result.lines)


def _order_detail(user, request: order_pb2.OrderIdRequest, context) -> order_pb2.OrderInfoResponse:
    return _order_info(_own_order(user, request))


def _pay_order(user, request: order_pb2.OrderIdRequest, context) -> order_pb2.OrderInfoResponse:
    return _order_info(pay_order(order=_own_order(user, request)))


def _cancel_order(user, request: order_pb2.OrderIdRequest, context) -> order_pb2.OrderInfoResponse:
    return _order_info(cancel_order(order=_own_order(user, request)))


def _own_order(user, request: order_pb2.OrderIdRequest) -> Order:
    """Fetch the caller's order ``request.id``; other users' orders do not exist for the caller."""
    order = orders_of(user=user).filter(pk=request.id).first() if 0 < request.id < 2**63 else None
    if order is None:
        raise CallRefused("not_found", f"No order {request.id} of yours.")
    return order


def _order_info(order: Order, *, lines=None) -> order_pb2.OrderInfoResponse:
    lines = order.lines.all() if lines is None else lines
    return order_pb2.OrderInfoResponse(
        id=order.pk,
        pay_price=f"{order.pay_price:.2f}",
        user_id=order.user_id,
        order_no=order.order_no,
        pay_type=PAID_PAY_TYPE if order.status == Order.Status.PAID else "",
        order_status=order.status,
        username=order.signer_name,
        address=order.address,
        mobile=order.signer_mobile,
        post=order.post,
        add_time=order.created_at.astimezone(UTC).strftime(ADD_TIME_FORMAT),
        trace_id=order.trace_id,
        lines=[
            order_pb2.OrderLine(
                goods_id=line.goods_id,
                goods_name=line.goods_name,
                goods_price=f"{line.goods_price:.2f}",
                nums=line.nums,
            )
            for line in lines
        ],
    )
