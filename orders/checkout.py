"""The checkout: a user's checked cart lines become a pending order, in one transaction of seven steps.

``create_order`` reads like its table of contents: each step is a named function whose span (the contract's
step names, ``tracing.CHECKOUT_STEPS``) and fault point come from one decorator, ``orders.tracing.checkout_step``.
Pricing is a pure function, ``price_lines``.
"""

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from opentelemetry import trace

from carts.errors import CartEmpty
from carts.locks import checked_items_for_checkout
from carts.services import delete_ordered_items
from goods.selectors import goods_for_sale_by_id
from inventory.services import deduct_stock
from mall.db import retry_on_lock_conflict
from mall.errors import DomainError
from orders import metrics, tracing
from orders.errors import IdempotencyKeyReused, OrderTooLarge
from orders.events import record_event
from orders.expiry import ensure_close_scheduled
from orders.models import Order, OrderEvent, OrderLine, new_order_no
from orders.tracing import checkout_span, checkout_span_ids, checkout_step, name_order

logger = logging.getLogger(__name__)

_PAY_PRICE_FIELD = Order._meta.get_field("pay_price")
MAX_PAY_PRICE = Decimal(10) ** (_PAY_PRICE_FIELD.max_digits - _PAY_PRICE_FIELD.decimal_places) - Decimal("0.01")
# The unique constraints a racing checkout may lose and retry: the Idempotency-Key and the order number.
RETRIED_CONSTRAINTS = frozenset({"order_idempotency_key_per_user", Order._meta.get_field("order_no").column})


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    created: bool  # False: an earlier request with the same Idempotency-Key made this order
    lines: list[OrderLine] | None = None  # the lines just saved (None for a replay): no need to read them back


class CartSelection(NamedTuple):
    items: list  # the checked cart lines, locked
    earlier: Order | None  # with no line left: the order of an earlier request with this key (a retry)


def create_order(
    *,
    user,
    address: str,
    signer_name: str,
    signer_mobile: str,
    post: str = "",
    note: str = "",
    idempotency_key: str | None = None,
) -> CheckoutResult:
    """Turn the user's checked cart lines into a pending order, all in one transaction.

    Any failure rolls everything back. With an ``idempotency_key``, a repeated request returns the first
    order instead of placing another one.
    """
    fields = dict(address=address, signer_name=signer_name, signer_mobile=signer_mobile, post=post, note=note)
    with checkout_span(user_id=user.pk):
        started = time.perf_counter()
        try:
            result = _earlier_or_new_order(
                user=user, idempotency_key=idempotency_key or None, fingerprint=_fingerprint(**fields), fields=fields
            )
        except Exception as exc:
            _record_checkout(user=user, started=started, error=exc)
            raise
        _record_checkout(user=user, started=started, result=result)
        _describe(result)
        return result


def _fingerprint(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@retry_on_lock_conflict(unique_races=RETRIED_CONSTRAINTS)
def _earlier_or_new_order(*, user, idempotency_key, fingerprint, fields) -> CheckoutResult:
    """Return the order an earlier request with this key placed, else place a new one.

    Run again when it lost a lock, or lost the race for the key to a concurrent request (the next attempt
    finds that request's order) or, vanishingly rarely, for the order number.
    """
    earlier = _earlier_order(user=user, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if earlier is not None:
        return CheckoutResult(earlier, created=False)
    return _place_order(user=user, idempotency_key=idempotency_key, fingerprint=fingerprint, fields=fields)


def _earlier_order(*, user, idempotency_key: str | None, fingerprint: str) -> Order | None:
    """Find the order placed by an earlier request with this Idempotency-Key (None without a key).

    The same key with a different request body is refused (``IdempotencyKeyReused``).
    """
    if idempotency_key is None:
        return None
    order = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if order is not None and order.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return order


def _place_order(*, user, idempotency_key, fingerprint, fields) -> CheckoutResult:
    """Run the seven steps in one transaction, in the contract's order."""
    with transaction.atomic(durable=True):
        selection = select_cart_lines(user=user, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if selection.earlier is not None:
            return CheckoutResult(selection.earlier, created=False)
        items = selection.items
        trace.get_current_span().set_attribute(tracing.ORDER_LINE_COUNT, len(items))
        lines, pay_price = query_goods(items=items)
        order = save_order(
            user=user, pay_price=pay_price, idempotency_key=idempotency_key, fingerprint=fingerprint, fields=fields
        )
        save_order_lines(order=order, lines=lines)
        delete_cart_lines(items=items)
        # After the other writes, so that the stock rows of popular goods stay locked only for the
        # deduction and the commit (docs/PERFORMANCE.md).
        deduct_order_stock(order=order, items=items)
        # Last, after any lock wait: a schedule row written here is uncommitted only until the commit
        # that follows, so django-q2's locking scan of the schedules never waits behind a checkout
        # that is itself waiting (for a hot item's stock row, say).
        schedule_timeout(order=order)
    return CheckoutResult(order, created=True, lines=lines)


@checkout_step("select_shopcart")
def select_cart_lines(*, user, idempotency_key: str | None, fingerprint: str) -> CartSelection:
    """Lock the user's checked cart lines; with none, find the order a retried request already placed."""
    items = checked_items_for_checkout(user=user)
    if items:
        return CartSelection(items, None)
    # The retry of a checkout that already emptied the cart gets that order.
    earlier = _earlier_order(user=user, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if earlier is None:
        raise CartEmpty()
    return CartSelection([], earlier)


@checkout_step("query_goods")
def query_goods(*, items: Sequence) -> tuple[list[OrderLine], Decimal]:
    """Read the goods on sale of the cart lines and price the order from them."""
    goods_by_id = goods_for_sale_by_id(goods_ids=[item.goods_id for item in items])
    return price_lines(items=items, goods_by_id=goods_by_id)


def price_lines(*, items: Sequence, goods_by_id: Mapping) -> tuple[list[OrderLine], Decimal]:
    """Price cart lines (``goods_id``, ``nums``) from the goods' names and prices; no database.

    Returns the unsaved order lines and the total; a total beyond what the order's column holds is
    refused (``OrderTooLarge``).
    """
    lines = [
        OrderLine(
            goods_id=item.goods_id,
            goods_name=goods_by_id[item.goods_id].name,
            goods_price=goods_by_id[item.goods_id].price,
            nums=item.nums,
        )
        for item in items
    ]
    pay_price = sum((line.goods_price * line.nums for line in lines), Decimal("0.00"))
    if pay_price > MAX_PAY_PRICE:
        raise OrderTooLarge(max_pay_price=str(MAX_PAY_PRICE))
    return lines, pay_price


@checkout_step("save_order")
def save_order(*, user, pay_price: Decimal, idempotency_key: str | None, fingerprint: str, fields) -> Order:
    """Write the order row, naming its checkout's trace, and its ``placed`` event."""
    trace_id, span_id = checkout_span_ids()
    now = timezone.now()
    order = Order.objects.create(
        order_no=new_order_no(user_id=user.pk, now=now),
        user=user,
        pay_price=pay_price,
        expires_at=timezone.now() + timedelta(seconds=settings.ORDER_PAY_TIMEOUT),
        trace_id=trace_id,
        span_id=span_id,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        **fields,
    )
    record_event(order=order, kind=OrderEvent.Kind.PLACED, at=order.created_at, actor=OrderEvent.Actor.CUSTOMER)
    return order


@checkout_step("save_order_goods")
def save_order_lines(*, order: Order, lines: list[OrderLine]) -> None:
    """Write the order's lines, in one insert."""
    for line in lines:
        line.order = order
    OrderLine.objects.bulk_create(lines)


@checkout_step("delete_shopcart")
def delete_cart_lines(*, items: Sequence) -> None:
    """Delete the cart lines the order took."""
    delete_ordered_items(item_ids=[item.pk for item in items])


@checkout_step("query_inv")
def deduct_order_stock(*, order: Order, items: Sequence) -> None:
    """Deduct the ordered units from stock (``inventory.services.deduct_stock``: lock order, ledger)."""
    deduct_stock(order_no=order.order_no, quantities={item.goods_id: item.nums for item in items})


@checkout_step("schedule_timeout")
def schedule_timeout(*, order: Order) -> None:
    """Make sure the order's deadline bucket has its close scheduled, in the checkout's transaction.

    django-q2 writes schedules as rows of its own table, so the timeout commits or rolls back with the
    order: an order never exists without its timeout.
    """
    ensure_close_scheduled(deadline=order.expires_at)


def _record_checkout(*, user, started: float, result: CheckoutResult | None = None, error: Exception | None = None):
    """Record a checkout's outcome in one place: its log line and its metrics by outcome (``placed``,
    a refusal's code, or ``error`` for a fault). A replay placed nothing: neither logged nor counted."""
    if result is not None and not result.created:
        return
    if result is not None:
        outcome = "placed"
        logger.info("order placed order_no=%s pay_price=%s", result.order.order_no, result.order.pay_price)
    elif isinstance(error, DomainError) and error.fault:
        # A failure of the shop (an injected fault), not a refusal: the README keeps "refused" for 4xx.
        outcome = metrics.CHECKOUT_ERROR
        logger.error(
            "checkout failed: injected fault code=%s step=%s user_id=%s", error.code, error.extra.get("step"), user.pk
        )
    elif isinstance(error, DomainError):
        outcome = error.code if error.code in metrics.CHECKOUT_OUTCOMES else metrics.CHECKOUT_ERROR
        logger.warning("checkout refused code=%s user_id=%s", error.code, user.pk)
    else:
        outcome = metrics.CHECKOUT_ERROR
        logger.error("checkout failed user_id=%s", user.pk, exc_info=error)
    metrics.orders_placed.add(1, {"outcome": outcome})
    metrics.checkout_duration.record(time.perf_counter() - started, {"outcome": outcome})


def _describe(result: CheckoutResult) -> None:
    """Put the order's number, id and price on the current (create_order) span."""
    span = trace.get_current_span()
    if span.is_recording():  # an unsampled checkout computes none of its attributes
        name_order(result.order)
        span.set_attribute(tracing.ORDER_PAY_PRICE, str(result.order.pay_price))
        if not result.created:
            span.set_attribute(tracing.ORDER_REPLAYED, True)
