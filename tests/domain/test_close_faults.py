"""The ``close_unpaid_order`` fault rule in the batch closes (deadline bucket's task, safety-net sweep): per order.

An injected error leaves its order pending in an ERROR trace of its own while the batch's other orders close;
a delay makes every close of the batch last it (they share one transaction).
"""

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule
from opentelemetry.trace import StatusCode

from faults import injection
from faults.services import clear_faults, set_fault
from inventory.models import Stock
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from orders.tasks import close_due_orders, close_overdue_orders
from tests.factories import fill_cart

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def faults_allowed(settings):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = True


@pytest.fixture
def overdue(user, address, goods_in_stock):
    """``count`` overdue one-line orders of one goods whose per-order timeouts were lost."""
    goods = goods_in_stock(stock=100)

    def make(count: int) -> list[Order]:
        orders = []
        for _ in range(count):
            fill_cart(user, (goods, 1))
            orders.append(create_order(user=user, **address).order)
        Order.objects.filter(pk__in=[order.pk for order in orders]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        Schedule.objects.all().delete()
        return orders

    make.goods = goods
    return make


def closes(spans):
    return [span for span in spans.get_finished_spans() if span.name == "close_unpaid_order"]


def fault_kind(span) -> str | None:
    events = [event for event in span.events if event.name == "mall.fault"]
    return events[0].attributes["mall.fault.kind"] if events else None


def pending_ids() -> set[int]:
    return set(Order.objects.filter(status=Order.Status.PENDING).values_list("pk", flat=True))


@pytest.mark.parametrize("task", [close_due_orders, close_overdue_orders], ids=["bucket task", "sweep"])
def test_an_error_at_100_percent_closes_no_order_of_the_batch(task, overdue, spans):
    orders = overdue(4)
    set_fault(step="close_unpaid_order", kind="error")
    spans.clear()

    assert task() == 0

    assert pending_ids() == {order.pk for order in orders}
    assert Stock.objects.get(goods=overdue.goods).quantity == 96  # no stock returned
    traced = closes(spans)
    assert sorted(span.attributes["mall.order.id"] for span in traced) == sorted(order.pk for order in orders)
    assert all(span.status.status_code is StatusCode.ERROR for span in traced)  # one trace each, no retry
    assert all(fault_kind(span) == "error" and span.attributes["mall.order.outcome"] == "failed" for span in traced)
    assert check_invariants() == []


@pytest.mark.parametrize("task", [close_due_orders, close_overdue_orders], ids=["bucket task", "sweep"])
def test_an_error_at_a_rate_leaves_only_the_orders_it_hits_pending(task, overdue, spans, monkeypatch):
    orders = overdue(12)
    set_fault(step="close_unpaid_order", kind="error", rate=50)
    monkeypatch.setattr(injection, "_draw", random.Random(7))  # a seeded draw: a known mix of hits and misses
    spans.clear()

    closed = task()

    traced = closes(spans)
    failed = {span.attributes["mall.order.id"] for span in traced if span.status.status_code is StatusCode.ERROR}
    done = {span.attributes["mall.order.id"] for span in traced if span.status.status_code is not StatusCode.ERROR}
    assert 0 < len(failed) < 12 and closed == len(done) == 12 - len(failed)
    assert pending_ids() == failed
    assert all(fault_kind(span) == "error" for span in traced if span.attributes["mall.order.id"] in failed)
    assert all(fault_kind(span) is None for span in traced if span.attributes["mall.order.id"] in done)
    assert Stock.objects.get(goods=overdue.goods).quantity == 100 - len(failed)
    assert {order.pk for order in orders} == failed | done
    assert check_invariants() == []


def test_the_orders_an_error_left_pending_close_once_the_rule_is_cleared(overdue):
    orders = overdue(3)
    set_fault(step="close_unpaid_order", kind="error")
    close_due_orders()
    clear_faults()

    assert close_overdue_orders() == 3
    assert pending_ids() == set()
    assert Stock.objects.get(goods=overdue.goods).quantity == 100
    assert len(orders) == 3


@pytest.mark.parametrize("task", [close_due_orders, close_overdue_orders], ids=["bucket task", "sweep"])
def test_a_delay_makes_each_close_span_of_the_batch_last_it(task, overdue, spans):
    overdue(3)
    set_fault(step="close_unpaid_order", kind="delay", milliseconds=150)
    spans.clear()

    assert task() == 3

    traced = closes(spans)
    assert len(traced) == 3 and pending_ids() == set()
    assert all((span.end_time - span.start_time) / 1e6 >= 150 for span in traced)
    assert all(fault_kind(span) == "delay" and span.status.status_code is not StatusCode.ERROR for span in traced)
