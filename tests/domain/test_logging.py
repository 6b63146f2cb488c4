"""Log correlation: the shop's log lines name the trace and span they were written in, and the order."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from mall.telemetry import TraceContextFilter
from orders.checkout import create_order
from orders.models import Order
from orders.tasks import close_unpaid_order
from tests.factories import fill_cart


class RecordsHandler(logging.Handler):
    """Keeps the records it handles, after the same trace-context filter as the shop's console handler."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(TraceContextFilter())

    def emit(self, record):
        self.records.append(record)

    def with_message(self, text: str) -> logging.LogRecord:
        (record,) = [r for r in self.records if text in r.getMessage()]
        return record


@pytest.fixture
def shop_logs():
    """Records of the ``orders`` loggers (services and tasks), with trace_id/span_id as the shop adds them."""
    handler = RecordsHandler()
    shop_logger = logging.getLogger("orders")
    shop_logger.addHandler(handler)
    yield handler
    shop_logger.removeHandler(handler)


def ids_of(span) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def ids_in(record) -> tuple[str, str]:
    return record.trace_id, record.span_id


def finished_span(spans, name):
    (span,) = [s for s in spans.get_finished_spans() if s.name == name]
    return span


@pytest.mark.django_db
def test_a_placed_order_is_logged_with_its_order_no_in_the_checkout_span(
    api, user, goods_in_stock, address, spans, shop_logs
):
    fill_cart(user, (goods_in_stock(price="4.50"), 2))

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 201
    record = shop_logs.with_message(f"order placed order_no={response.data['order_no']}")
    assert record.levelno == logging.INFO
    assert "pay_price=9.00" in record.getMessage()
    assert ids_in(record) == ids_of(finished_span(spans, "create_order"))
    assert record.trace_id == response.data["trace_id"]


@pytest.mark.django_db
@pytest.mark.parametrize("refusal", ["cart_empty", "insufficient_stock"])
def test_a_refused_checkout_is_logged_with_its_code_in_the_checkout_span(
    api, user, goods_in_stock, address, settings, spans, shop_logs, refusal
):
    if refusal == "insufficient_stock":
        fill_cart(user, (goods_in_stock(stock=1), 2))

    response = api.post("/api/orders/", address, format="json")

    assert response.data["code"] == refusal
    record = shop_logs.with_message(f"checkout refused code={refusal}")
    assert record.levelno == logging.WARNING
    assert f"user_id={user.pk}" in record.getMessage()
    assert ids_in(record) == ids_of(finished_span(spans, "create_order"))


@pytest.mark.django_db
def test_a_timeout_close_is_logged_with_its_order_no_in_the_close_span(
    user, goods_in_stock, address, settings, spans, shop_logs
):
    fill_cart(user, (goods_in_stock(), 1))
    order = create_order(user=user, **address).order
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert close_unpaid_order(order.pk, "") == "closed"

    record = shop_logs.with_message(f"order closed unpaid order_no={order.order_no}")
    close = finished_span(spans, "close_unpaid_order")
    assert ids_in(record) == ids_of(close)
    assert record.trace_id != order.trace_id  # the close has a trace of its own


def test_records_outside_any_span_say_so():
    handler = RecordsHandler()
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, "no span here", None, None)

    assert handler.filter(record)
    assert ids_in(record) == ("-", "-")


@pytest.mark.django_db
def test_the_console_log_line_is_one_line_of_key_values_with_the_trace_ids(
    api, user, goods_in_stock, address, shop_logs
):
    """The formatter and filter configured in settings.LOGGING, as operators read them."""
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, TraceContextFilter) for f in h.filters))
    fill_cart(user, (goods_in_stock(), 1))
    response = api.post("/api/orders/", address, format="json")
    record = shop_logs.with_message("order placed")

    line = console.format(record)

    assert "\n" not in line
    fields = dict(part.split("=", 1) for part in line.split(" msg=")[0].split(" ") if "=" in part)
    assert fields["level"] == "INFO"
    assert fields["logger"] == "orders.checkout"
    assert fields["trace_id"] == response.data["trace_id"]
    assert len(fields["span_id"]) == 16
    assert f"order_no={response.data['order_no']}" in line
