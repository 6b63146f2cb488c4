"""The shop's metrics: orders placed by outcome, checkout duration, orders closed by reason, stock returned.

The in-memory reader is cumulative over the whole test session: tests assert the change they cause.
"""

import functools
from datetime import timedelta

import pytest
from django.utils import timezone
from opentelemetry.sdk.metrics.export import Histogram, Sum

from mall.telemetry import build_resource
from orders.checkout import create_order
from orders.metrics import DURATION_BUCKETS_S
from orders.models import Order
from orders.services import pay_order
from orders.tasks import close_unpaid_order
from orders.tracing import CHECKOUT_STEPS
from tests.factories import fill_cart


class MetricsSnapshot:
    """Totals of every metric series at one moment; ``since(earlier)`` gives what happened in between."""

    def __init__(self, reader):
        self.totals: dict[tuple[str, frozenset], float] = {}
        self.counts: dict[tuple[str, frozenset], int] = {}
        self.instruments = {}
        data = reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self.instruments[metric.name] = metric
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset(point.attributes.items()))
                        if isinstance(metric.data, Histogram):
                            self.totals[key], self.counts[key] = point.sum, point.count
                        else:
                            self.totals[key] = point.value


@pytest.fixture
def measure(metric_reader):
    """``measure()`` snapshots now; ``measure.change(name, **attributes)`` is the total added since."""

    class Measure:
        def __init__(self):
            self.before = MetricsSnapshot(metric_reader)

        def _key(self, name, attributes):
            return (name, frozenset(attributes.items()))

        def change(self, name, **attributes):
            key, after = self._key(name, attributes), MetricsSnapshot(metric_reader)
            return after.totals.get(key, 0) - self.before.totals.get(key, 0)

        def count_change(self, name, **attributes):
            key, after = self._key(name, attributes), MetricsSnapshot(metric_reader)
            return after.counts.get(key, 0) - self.before.counts.get(key, 0)

        def instrument(self, name):
            return MetricsSnapshot(metric_reader).instruments[name]

    return Measure


def checkout(api, address, **headers):
    return api.post("/api/orders/", address, format="json", **headers)


@pytest.mark.django_db
def test_a_placed_order_counts_once_and_records_its_duration(api, user, goods_in_stock, address, measure):
    fill_cart(user, (goods_in_stock(), 1))
    measured = measure()

    assert checkout(api, address).status_code == 201

    assert measured.change("mall.orders.placed", outcome="placed") == 1
    assert measured.count_change("mall.checkout.duration", outcome="placed") == 1
    assert 0 < measured.change("mall.checkout.duration", outcome="placed") < 10  # seconds, not ms
    for refusal in ("insufficient_stock", "cart_empty", "error"):
        assert measured.change("mall.orders.placed", outcome=refusal) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["cart_empty", "insufficient_stock", "error"])
def test_a_refused_checkout_counts_under_its_outcome(api, user, goods_in_stock, address, settings, measure, outcome):
    if outcome == "insufficient_stock":
        fill_cart(user, (goods_in_stock(stock=2), 3))
    elif outcome == "error":
        fill_cart(user, (goods_in_stock(), 1))
        settings.CHECKOUT_FAIL_STEP = "delete_shopcart"
    measured = measure()

    response = checkout(api, address)

    assert response.status_code >= 400
    assert measured.change("mall.orders.placed", outcome=outcome) == 1
    assert measured.change("mall.orders.placed", outcome="placed") == 0
    assert measured.count_change("mall.checkout.duration", outcome=outcome) == 1


@pytest.mark.django_db
def test_a_replayed_checkout_is_not_counted_again(api, user, goods_in_stock, address, measure):
    fill_cart(user, (goods_in_stock(), 1))
    assert checkout(api, address, HTTP_IDEMPOTENCY_KEY="order-once").status_code == 201
    measured = measure()

    assert checkout(api, address, HTTP_IDEMPOTENCY_KEY="order-once").status_code == 200

    assert measured.change("mall.orders.placed", outcome="placed") == 0
    assert measured.count_change("mall.checkout.duration", outcome="placed") == 0


@pytest.fixture
def pending_order(user, goods_in_stock, address):
    """An order of 3 + 2 units."""
    fill_cart(user, (goods_in_stock(), 3), (goods_in_stock(), 2))
    return create_order(user=user, **address).order


@pytest.mark.django_db
def test_a_cancel_counts_as_closed_cancelled_and_returns_its_units(api, pending_order, measure):
    measured = measure()

    assert api.post(f"/api/orders/{pending_order.pk}/cancel/").status_code == 200

    assert measured.change("mall.orders.closed", reason="cancelled") == 1
    assert measured.change("mall.orders.closed", reason="timeout") == 0
    assert measured.change("mall.stock.returned") == 5


@pytest.mark.django_db
def test_a_timeout_close_counts_as_closed_timeout_and_returns_its_units(pending_order, measure):
    Order.objects.filter(pk=pending_order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    measured = measure()

    assert close_unpaid_order(pending_order.pk, "") == "closed"
    assert close_unpaid_order(pending_order.pk, "") == "skipped_closed"  # a second delivery changes nothing

    assert measured.change("mall.orders.closed", reason="timeout") == 1
    assert measured.change("mall.orders.closed", reason="cancelled") == 0
    assert measured.change("mall.stock.returned") == 5


@pytest.mark.django_db
def test_a_paid_order_is_neither_closed_nor_returned(pending_order, measure):
    pay_order(order=pending_order)
    Order.objects.filter(pk=pending_order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    measured = measure()

    assert close_unpaid_order(pending_order.pk, "") == "skipped_paid"

    assert measured.change("mall.orders.closed", reason="timeout") == 0
    assert measured.change("mall.stock.returned") == 0


@pytest.mark.django_db
def test_the_instruments_have_the_documented_kinds_and_units(
    api, user, goods_in_stock, address, pending_order, measure
):
    api.post(f"/api/orders/{pending_order.pk}/cancel/")
    fill_cart(user, (goods_in_stock(), 1))
    checkout(api, address)
    measured = measure()

    duration = measured.instrument("mall.checkout.duration")
    assert isinstance(duration.data, Histogram) and duration.unit == "s"
    for counter in ("mall.orders.placed", "mall.orders.closed", "mall.stock.returned"):
        instrument = measured.instrument(counter)
        assert isinstance(instrument.data, Sum) and instrument.data.is_monotonic, counter
    assert measured.instrument("mall.stock.returned").unit == "{unit}"


@pytest.mark.django_db
def test_every_checkout_step_records_its_duration_under_its_name(api, user, goods_in_stock, address, measure):
    fill_cart(user, (goods_in_stock(), 1))
    measured = measure()

    assert checkout(api, address).status_code == 201

    for step in CHECKOUT_STEPS:
        assert measured.count_change("mall.checkout.step.duration", **{"mall.step": step, "outcome": "ok"}) == 1, step
    step_histogram = measured.instrument("mall.checkout.step.duration")
    assert isinstance(step_histogram.data, Histogram) and step_histogram.unit == "s"


@pytest.mark.django_db
def test_a_failed_step_records_its_outcome_and_the_steps_after_it_record_nothing(
    api, user, goods_in_stock, address, settings, measure
):
    fill_cart(user, (goods_in_stock(), 1))
    settings.CHECKOUT_FAIL_STEP = "delete_shopcart"
    measured = measure()

    assert checkout(api, address).status_code >= 500

    failed_at = CHECKOUT_STEPS.index("delete_shopcart")
    step_count = functools.partial(measured.count_change, "mall.checkout.step.duration")
    assert step_count(**{"mall.step": "delete_shopcart", "outcome": "error"}) == 1
    for step in CHECKOUT_STEPS[:failed_at]:
        assert step_count(**{"mall.step": step, "outcome": "ok"}) == 1, step
    for step in CHECKOUT_STEPS[failed_at + 1 :]:
        assert step_count(**{"mall.step": step, "outcome": "ok"}) == 0, step


@pytest.mark.django_db
def test_the_duration_histograms_have_boundaries_for_seconds(api, user, goods_in_stock, address, measure):
    fill_cart(user, (goods_in_stock(), 1))
    checkout(api, address)
    measured = measure()

    for name in ("mall.checkout.duration", "mall.checkout.step.duration"):
        for point in measured.instrument(name).data.data_points:
            assert tuple(point.explicit_bounds) == DURATION_BUCKETS_S, name


@pytest.mark.django_db
def test_a_refusing_step_records_the_refusal_code(api, user, goods_in_stock, address, measure):
    fill_cart(user, (goods_in_stock(stock=2), 3))
    measured = measure()

    assert checkout(api, address).status_code == 409

    refused = [
        step
        for step in CHECKOUT_STEPS
        if measured.count_change("mall.checkout.step.duration", **{"mall.step": step, "outcome": "insufficient_stock"})
    ]
    assert refused == ["query_inv"]


def test_each_process_exports_as_an_instance_of_its_own(monkeypatch):
    """Cumulative series of two processes (gunicorn workers) must not merge in Prometheus: the SDK's resource
    names the process (``service.instance.id``, renewed after a fork) unless the environment names it."""
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert build_resource().attributes["service.instance.id"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=web-1")
    assert build_resource().attributes["service.instance.id"] == "web-1"
