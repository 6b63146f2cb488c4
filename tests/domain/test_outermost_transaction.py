"""Services that must own their transaction refuse to run inside a caller's.

Their retry of a lost deadlock or lock wait (``mall.db.retry_on_lock_conflict``) only works when they
are the outermost transaction: nested, InnoDB has already rolled the caller's transaction back and
the retry would silently not happen. So they open ``atomic(durable=True)``, and a nested call fails
at once, before any write. The test's own transaction (pytest-django's ``db``) is Django's TestCase
atomic, which a durable block may nest in; the ``transaction.atomic()`` below is a caller's.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from orders.checkout import create_order
from orders.expiry import close_order_if_overdue, close_overdue_batch
from orders.models import Order
from orders.services import cancel_order
from tests.factories import fill_cart

NESTED = "A durable atomic block cannot be nested within another atomic block."


@pytest.fixture
def pending_order(user, address, goods_in_stock):
    fill_cart(user, (goods_in_stock(stock=5), 2))
    return create_order(user=user, **address).order


def test_the_checkout_refuses_a_callers_transaction(user, address, goods_in_stock):
    fill_cart(user, (goods_in_stock(stock=5), 2))
    with pytest.raises(RuntimeError, match=NESTED), transaction.atomic():
        create_order(user=user, **address)
    assert not Order.objects.exists()


def test_cancel_refuses_a_callers_transaction(pending_order):
    with pytest.raises(RuntimeError, match=NESTED), transaction.atomic():
        cancel_order(order=pending_order)
    pending_order.refresh_from_db()
    assert pending_order.status == Order.Status.PENDING


def test_the_closes_refuse_a_callers_transaction(pending_order):
    later = timezone.now() + timedelta(days=1)
    with pytest.raises(RuntimeError, match=NESTED), transaction.atomic():
        close_order_if_overdue(order=pending_order, now=later)
    with pytest.raises(RuntimeError, match=NESTED), transaction.atomic():
        close_overdue_batch(now=later, limit=10)
    pending_order.refresh_from_db()
    assert pending_order.status == Order.Status.PENDING


def test_on_their_own_they_run(pending_order):
    later = timezone.now() + timedelta(days=1)
    assert [order.id for order in close_overdue_batch(now=later, limit=10)] == [pending_order.id]
    assert close_order_if_overdue(order=pending_order, now=later) == "skipped_closed"
