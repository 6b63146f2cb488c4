"""In-process SQL statements of the checkout: counts per cart size, and one captured cycle for the floor.

Runs on whatever database Django is connected to (the bench's own, or pytest's test database in
tests/tooling/test_bench_smoke.py). Needs Django set up; imports the shop lazily.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal

CHECKOUT_BODY = {"address": "1 Bench Street, Springfield", "signer_name": "Bench Buyer", "signer_mobile": "+15550100"}
LINE_COUNTS = (1, 10, 50)


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@dataclass(frozen=True)
class StatementCount:
    """What Django's CaptureQueriesContext records (as tests/domain/test_checkout.py counts), and how much of it
    is transaction control (BEGIN/COMMIT, which Django logs as queries too)."""

    lines: int
    service: int  # orders.checkout.create_order
    service_control: int
    request: int  # POST /api/orders/: token auth, checkout, response
    request_control: int


def _control(captured) -> int:
    return sum(query["sql"].lstrip().upper().startswith(_TRANSACTION_CONTROL) for query in captured)


@dataclass(frozen=True)
class CapturedStatement:
    sql: str
    params: tuple
    transaction: int | None  # statements of one transaction.atomic() block share a number; None: autocommit


@dataclass
class CapturedCycle:
    """One checkout cycle (add to cart + POST /api/orders/) as the shop ran it, with what it ran on."""

    statements: list[CapturedStatement] = field(default_factory=list)
    token: str = ""
    user_id: int = 0
    goods_id: int = 0
    goods_name: str = ""
    goods_price: Decimal = Decimal("0")
    cart_item_id: int = 0
    order_id: int = 0
    order_no: str = ""
    fingerprint: str = ""
    trace_id: str = ""  # of the create_order span ("" when tracing is off)
    span_id: str = ""


def new_buyer(*, prefix: str = "bench"):
    """A user with an API token (no usable password: the bench only uses tokens)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username=f"{prefix}-{secrets.token_hex(6)}", password=None)
    return user, Token.objects.create(user=user).key


def new_goods(*, stock: int, price: str = "9.99", prefix: str = "bench"):
    from inventory.services import create_goods_with_stock

    return create_goods_with_stock(name=f"{prefix} goods {secrets.token_hex(4)}", price=Decimal(price), stock=stock)


def _post_checkout(token: str):
    from django.test import Client

    return Client().post(
        "/api/orders/", CHECKOUT_BODY, content_type="application/json", secure=True, HTTP_AUTHORIZATION=f"Token {token}"
    )


def schedule_timeout_buckets_ahead() -> None:
    """Schedule the next few deadline buckets' closes, as the first checkout of each bucket would: the
    checkouts measured here are the typical ones, which find their bucket scheduled (orders/expiry.py)."""
    from datetime import timedelta

    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from orders.expiry import BUCKET_SECONDS, ensure_close_scheduled

    soon = timezone.now() + timedelta(seconds=settings.ORDER_PAY_TIMEOUT)
    with transaction.atomic():
        for ahead in range(0, 120, BUCKET_SECONDS):
            ensure_close_scheduled(deadline=soon + timedelta(seconds=ahead))


def checkout_statement_counts(line_counts=LINE_COUNTS) -> list[StatementCount]:
    """SQL statements of one checkout for each cart size: the service alone and the whole API request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from carts.services import add_to_cart
    from orders.checkout import create_order

    counts = []
    schedule_timeout_buckets_ahead()
    for lines in line_counts:
        goods = [new_goods(stock=1000, prefix="count") for _ in range(lines)]
        service_user, _ = new_buyer(prefix="count")
        request_user, token = new_buyer(prefix="count")
        for user in (service_user, request_user):
            for item in goods:
                add_to_cart(user=user, goods_id=item.pk, quantity=1)
        with CaptureQueriesContext(connection) as service:
            create_order(user=service_user, **CHECKOUT_BODY)
        with CaptureQueriesContext(connection) as request:
            response = _post_checkout(token)
        if response.status_code != 201:
            raise RuntimeError(f"checkout of {lines} lines failed: {response.status_code} {response.content[:300]!r}")
        counts.append(
            StatementCount(
                lines=lines,
                service=len(service),
                service_control=_control(service),
                request=len(request),
                request_control=_control(request),
            )
        )
    return counts


def capture_checkout_cycle() -> CapturedCycle:
    """Run one checkout cycle through the real views (test client) and record every statement with its params."""
    from django.db import connection
    from django.test import Client

    from orders.models import Order

    user, token = new_buyer(prefix="capture")
    goods = new_goods(stock=1_000_000, prefix="capture")
    cycle = CapturedCycle(
        token=token,
        user_id=user.pk,
        goods_id=goods.pk,
        goods_name=goods.name,
        goods_price=goods.price,
    )
    transactions: dict[int, int] = {}

    def record(execute, sql, params, many, context):
        outermost = connection.atomic_blocks[0] if connection.atomic_blocks else None
        number = transactions.setdefault(id(outermost), len(transactions)) if outermost is not None else None
        cycle.statements.append(CapturedStatement(sql=sql, params=tuple(params or ()), transaction=number))
        return execute(sql, params, many, context)

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    schedule_timeout_buckets_ahead()
    with connection.execute_wrapper(record):
        added = client.post(
            "/api/cart/", {"goods": goods.pk, "nums": 1}, content_type="application/json", secure=True, **auth
        )
        placed = _post_checkout(token)
    if added.status_code != 201 or placed.status_code != 201:
        raise RuntimeError(f"captured cycle failed: cart {added.status_code}, checkout {placed.status_code}")
    cycle.cart_item_id = added.json()["id"]
    order = Order.objects.get(pk=placed.json()["id"])
    cycle.order_id, cycle.order_no, cycle.fingerprint = order.pk, order.order_no, order.request_fingerprint
    cycle.trace_id, cycle.span_id = order.trace_id, order.span_id
    return cycle


@dataclass(frozen=True)
class LockHold:
    checkouts: int
    median_ms: float  # from the stock rows' locking read to the commit's return
    p90_ms: float
    cpu_ms: float  # process CPU per create_order (in this process: no HTTP, tracing as configured here)


def stock_lock_hold(checkouts: int = 100) -> LockHold:
    """How long one checkout holds its stock row locks: the hot-item contention, measured in-process."""
    import statistics
    import time

    from django.db import connection

    from carts.services import add_to_cart
    from orders.checkout import create_order
    from perf.loadgen.stats import percentile

    goods = new_goods(stock=1_000_000, prefix="lock")
    user, _ = new_buyer(prefix="lock")
    holds, cpu = [], 0.0
    for number in range(checkouts + 10):  # the first 10 warm caches up
        add_to_cart(user=user, goods_id=goods.pk, quantity=1)
        locked = []

        def note_lock(execute, sql, params, many, context, locked=locked):
            if not locked and "inventory_stock" in sql and sql.rstrip().upper().endswith("FOR UPDATE"):
                locked.append(time.perf_counter())
            return execute(sql, params, many, context)

        cpu_before = time.process_time()
        with connection.execute_wrapper(note_lock):
            create_order(user=user, **CHECKOUT_BODY)
        committed = time.perf_counter()
        if number >= 10 and locked:
            holds.append(committed - locked[0])
            cpu += time.process_time() - cpu_before
    if not holds:  # SQLite has no row locks: BEGIN IMMEDIATE locks the whole database instead
        return LockHold(checkouts=checkouts, median_ms=float("nan"), p90_ms=float("nan"), cpu_ms=float("nan"))
    return LockHold(
        checkouts=len(holds),
        median_ms=statistics.median(holds) * 1000,
        p90_ms=percentile(holds, 0.9) * 1000,
        cpu_ms=cpu / len(holds) * 1000,
    )
