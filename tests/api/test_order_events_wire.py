"""An order's lifecycle on the wire: a real gunicorn and a real qcluster, exporting to the in-process receiver.

Three orders of one customer: one paid, one cancelled over the API, one left to its payment timeout
(closed by the django-q2 task). Each change is an event whose trace id is a trace the receiver got,
with the span that made the change carrying the order's ``mall.order.no``.
"""

import pytest
import requests

from orders.models import Order, OrderEvent
from tests.api.test_wire import (  # noqa: F401 (shopper: fixture)
    checkout,
    exporting_env,
    postpone_the_safety_net,
    refill_cart,
    shopper,
    wait_for,
)
from tests.support import qcluster, shop_server

PAY_TIMEOUT = "6"  # seconds: the paid and cancelled orders are ended well before; the third times out
CLOSE_WAIT = 120  # the scheduler's first pass is ~30 s after the cluster starts


def post(base_url: str, customer, path: str) -> dict:
    response = requests.post(f"{base_url}{path}", headers={"Authorization": f"Token {customer.token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def lifecycle(order_id: int) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(order_id=order_id).order_by("id"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_change_of_an_order_is_an_event_in_a_trace_the_collector_got(
    otlp_receiver,
    shopper,  # noqa: F811
    address,
    tmp_path,
):
    env = exporting_env(otlp_receiver.grpc_endpoint, "grpc", ORDER_PAY_TIMEOUT=PAY_TIMEOUT)
    postpone_the_safety_net()  # the timeout task, not the sweep, closes the overdue order
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        placed = []
        for _ in range(3):
            if placed:
                refill_cart(shopper)
            response = checkout(base_url, shopper, address)
            assert response.status_code == 201, response.text
            placed.append(response.json())
        paid, cancelled, timed_out = placed
        assert post(base_url, shopper, f"/api/orders/{paid['id']}/pay/")["status"] == "paid"
        assert post(base_url, shopper, f"/api/orders/{cancelled['id']}/cancel/")["status"] == "cancelled"

        with qcluster(env=env, log_dir=tmp_path):
            wait_for(
                lambda: Order.objects.get(pk=timed_out["id"]).status == Order.Status.CLOSED,
                timeout=CLOSE_WAIT,
                what="the timeout close",
                log_dir=tmp_path,
            )

            expected = {
                paid["id"]: [("placed", "customer", "create_order"), ("paid", "customer", "pay_order")],
                cancelled["id"]: [("placed", "customer", "create_order"), ("cancelled", "customer", "cancel_order")],
                timed_out["id"]: [("placed", "customer", "create_order"), ("closed", "timeout", "close_unpaid_order")],
            }
            for order in placed:
                events = lifecycle(order["id"])
                assert [(e.kind, e.actor) for e in events] == [(k, a) for k, a, _ in expected[order["id"]]]
                assert events[0].trace_id == order["trace_id"]
                for event, (_, _, span_name) in zip(events, expected[order["id"]], strict=True):
                    span = wait_for(
                        lambda e=event, n=span_name, o=order: [
                            s
                            for s in otlp_receiver.spans_named(n, trace_id=e.trace_id)
                            if s.attributes.get("mall.order.no") == o["order_no"]
                        ],
                        timeout=30,
                        what=f"{span_name} of order {order['id']} on the wire",
                        log_dir=tmp_path,
                    )[0]
                    assert span.attributes["mall.order.id"] == order["id"]
                    assert span.status == "UNSET"

    close = lifecycle(timed_out["id"])[-1]
    [close_span] = otlp_receiver.spans_named("close_unpaid_order", trace_id=close.trace_id)
    assert [link.trace_id for link in close_span.links] == [timed_out["trace_id"]]  # linked back to its checkout
