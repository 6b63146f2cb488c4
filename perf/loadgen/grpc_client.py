"""The load tool as a client of the gRPC order service (``place_test_orders --grpc HOST:PORT``).

The proto has no cart: shoppers log in and fill their carts over the REST API (``--url``), and check out
and pay over gRPC with opentelemetry-instrumentation-grpc's client interceptor, so one trace spans the
tool's ``place_test_order`` span, its CLIENT span and the gRPC server's spans.
"""

from __future__ import annotations

import grpc

from mall.api.grpc_status import ERROR_CODE_METADATA_KEY, FAULT_STATUSES
from mall.telemetry import instrumented_grpc_channel
from orders.grpc import order_pb2, order_pb2_grpc
from perf.loadgen.http_client import REQUEST_TIMEOUT, HttpShop
from perf.loadgen.plan import Shopper
from perf.loadgen.shop import ORDER_DETAILS, Failed, LoadSetupError, Refused

# Failures of the connection rather than answers of the shop.
_TRANSPORT_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class GrpcShop(HttpShop):
    mode = "grpc"

    def __init__(self, *, target: str, base_url: str, password: str):
        super().__init__(base_url=base_url, password=password)
        if ":" not in target:
            raise LoadSetupError(f"--grpc must be HOST:PORT like 127.0.0.1:9500, not {target!r}")
        self.target = target
        self._channel = grpc.insecure_channel(target)
        self._stub = order_pb2_grpc.OrderStub(instrumented_grpc_channel(self._channel, self.tracer_provider))

    def _rpc(self, shopper: Shopper, method, request):
        try:
            return method(request, metadata=(("authorization", f"Token {shopper.token}"),), timeout=REQUEST_TIMEOUT)
        except grpc.RpcError as error:
            code = dict(error.trailing_metadata() or ()).get(ERROR_CODE_METADATA_KEY)
            if code is None or error.code() in FAULT_STATUSES or error.code() in _TRANSPORT_FAILURES:
                raise Failed(f"grpc_{error.code().name.lower()}", cause=error) from None
            raise Refused(code) from None

    def check_out(self, shopper: Shopper) -> tuple[int, object]:
        request = order_pb2.OrderRequest(
            username=ORDER_DETAILS["signer_name"],
            address=ORDER_DETAILS["address"],
            mobile=ORDER_DETAILS["signer_mobile"],
            note=ORDER_DETAILS["note"],
        )
        order = self._rpc(shopper, self._stub.CreateGoodsOrder, request)
        return order.id, order.id

    def pay(self, shopper: Shopper, order: object) -> None:
        self._rpc(shopper, self._stub.PayOrder, order_pb2.OrderIdRequest(id=order))

    def finish(self) -> None:
        self._channel.close()
        super().finish()
