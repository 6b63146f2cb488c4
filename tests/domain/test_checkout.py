from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule
from opentelemetry.trace import SpanKind, StatusCode

from carts.models import CartItem
from inventory.models import Stock, StockMove
from orders.checkout import MAX_PAY_PRICE, create_order, price_lines
from orders.errors import OrderTooLarge
from orders.models import Order, OrderLine
from orders.tracing import CHECKOUT_STEPS
from tests.factories import GoodsFactory, UserFactory, fill_cart


def stock_of(goods):
    return Stock.objects.get(goods=goods).quantity


def shop_state():
    """Everything a checkout may write, to prove a failed one wrote nothing."""
    return {
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "moves": list(StockMove.objects.values_list("goods_id", "kind", "quantity").order_by("id")),
        "stock": list(Stock.objects.values_list("goods_id", "quantity").order_by("goods_id")),
        "cart": list(CartItem.objects.values_list("id", "nums", "checked").order_by("id")),
        "schedules": Schedule.objects.filter(func__startswith="orders.").count(),
    }


def by_name(spans, name):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {len(found)} spans"
    return found[0]


def test_checkout_turns_checked_cart_lines_into_a_pending_order(api, user, goods_in_stock, address, settings):
    tea = goods_in_stock(name="Tea", price="3.35", stock=10)
    cup = goods_in_stock(name="Cup", price="0.10", stock=10)
    saucer = goods_in_stock(name="Saucer", price="7.00", stock=10)
    fill_cart(user, (tea, 3), (cup, 7))
    CartItem.objects.create(user=user, goods=saucer, nums=1, checked=False)

    response = api.post("/api/orders/", {**address, "post": "12345", "note": "ring twice"}, format="json")

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    assert body["status"] == "pending"
    assert body["pay_price"] == "10.75"  # 3 × 3.35 + 7 × 0.10, exact in Decimal
    assert order.pay_price == Decimal("10.75")
    assert body["order_no"] == order.order_no and str(user.pk % 1_000_000).zfill(6) in order.order_no
    assert body["lines"] == [
        {"goods": tea.pk, "goods_name": "Tea", "goods_price": "3.35", "nums": 3},
        {"goods": cup.pk, "goods_name": "Cup", "goods_price": "0.10", "nums": 7},
    ]
    assert len(body["trace_id"]) == 32 and body["trace_id"] == order.trace_id
    assert (order.expires_at - order.created_at).total_seconds() == pytest.approx(settings.ORDER_PAY_TIMEOUT, abs=5)
    assert (stock_of(tea), stock_of(cup), stock_of(saucer)) == (7, 3, 10)
    sells = set(StockMove.objects.filter(kind="sell").values_list("goods_id", "order_no", "quantity"))
    assert sells == {(tea.pk, order.order_no, 3), (cup.pk, order.order_no, 7)}
    assert list(CartItem.objects.filter(user=user).values_list("goods_id", flat=True)) == [saucer.pk]


def test_checkout_trace_has_one_span_per_step_under_create_order(api, user, goods_in_stock, address, spans):
    fill_cart(user, (goods_in_stock(price="2.50"), 2), (goods_in_stock(price="1.00"), 1))
    spans.clear()

    order_id = api.post("/api/orders/", address, format="json").json()["id"]

    finished = spans.get_finished_spans()
    server = by_name(finished, "POST api/orders/")
    create = by_name(finished, "create_order")
    assert server.kind is SpanKind.SERVER
    assert create.parent.span_id == server.context.span_id
    steps = [s for s in finished if s.name in CHECKOUT_STEPS]
    assert all(s.parent.span_id == create.context.span_id for s in steps)
    # Each step once, in the order they run: query_inv after the other writes (shorter stock row locks), then
    # schedule_timeout, after any lock wait (no schedule row left uncommitted while a checkout waits).
    run_order = ["select_shopcart", "query_goods", "save_order", "save_order_goods", "delete_shopcart"]
    assert [s.name for s in sorted(steps, key=lambda s: s.start_time)] == [*run_order, "query_inv", "schedule_timeout"]
    step_ids = {s.context.span_id for s in steps}
    for step in steps:  # every step runs SQL, and its statements are its children
        children = [s for s in finished if s.parent and s.parent.span_id == step.context.span_id]
        assert children and all(c.kind is SpanKind.CLIENT for c in children), step.name
    db_spans_in_create = [s for s in finished if s.kind is SpanKind.CLIENT and s.parent.span_id in step_ids]
    assert len(db_spans_in_create) >= 7
    order = Order.objects.get(pk=order_id)
    assert dict(create.attributes) == {
        "user.id": str(user.pk),
        "mall.order.no": order.order_no,
        "mall.order.id": order.pk,
        "mall.order.line_count": 2,
        "mall.order.pay_price": "6.00",
    }
    assert order.trace_id == format(create.context.trace_id, "032x")
    assert order.span_id == format(create.context.span_id, "016x")
    assert all(s.status.status_code is not StatusCode.ERROR for s in finished)


def test_empty_cart_is_refused_and_traced_as_a_refusal_not_an_error(api, user, goods_in_stock, address, spans):
    CartItem.objects.create(user=user, goods=goods_in_stock(), nums=1, checked=False)  # not checked: not ordered
    before = shop_state()
    spans.clear()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "cart_empty"
    assert shop_state() == before
    finished = spans.get_finished_spans()
    for name in ("select_shopcart", "create_order"):  # a refusal (4xx) is not a span error
        span = by_name(finished, name)
        assert span.status.status_code is StatusCode.UNSET
        assert span.attributes["mall.refusal.code"] == "cart_empty"
        assert not [e for e in span.events if e.name == "exception"]
    assert not [s for s in finished if s.name in CHECKOUT_STEPS[1:]]


def test_goods_off_sale_are_not_sold(api, user, goods_in_stock, address):
    on_sale, withdrawn = goods_in_stock(), goods_in_stock()
    fill_cart(user, (on_sale, 1), (withdrawn, 1))
    withdrawn.on_sale = False
    withdrawn.save()
    before = shop_state()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "goods_unavailable"
    assert response.json()["goods"] == [withdrawn.pk]
    assert shop_state() == before


def test_insufficient_stock_rolls_everything_back(api, user, goods_in_stock, address, spans):
    plenty, scarce = goods_in_stock(stock=10), goods_in_stock(stock=1)
    fill_cart(user, (plenty, 2), (scarce, 2))
    before = shop_state()
    spans.clear()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["goods"] == [scarce.pk]
    assert shop_state() == before
    for name in ("query_inv", "create_order"):
        span = by_name(spans.get_finished_spans(), name)
        assert span.status.status_code is StatusCode.UNSET
        assert span.attributes["mall.refusal.code"] == "insufficient_stock"


@pytest.mark.parametrize("step", CHECKOUT_STEPS)
def test_a_failure_in_any_step_writes_nothing(api, user, goods_in_stock, address, settings, spans, step):
    fill_cart(user, (goods_in_stock(stock=5), 2), (goods_in_stock(stock=5), 1))
    settings.CHECKOUT_FAIL_STEP = step
    before = shop_state()
    spans.clear()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "checkout_fault_injected"
    assert shop_state() == before
    finished = spans.get_finished_spans()
    for name in (step, "create_order"):
        span = by_name(finished, name)
        assert span.status.status_code is StatusCode.ERROR
        assert any(e.name == "exception" for e in span.events)


def checkout_queries(lines: int) -> int:
    user = UserFactory()
    fill_cart(user, *[(GoodsFactory(stock_quantity=10), 1) for _ in range(lines)])
    with CaptureQueriesContext(connection) as queries:
        create_order(user=user, address="a", signer_name="b", signer_mobile="123456")
    # Not the deadline bucket's schedule: none for most checkouts, 2 for a bucket's first (test_timeout_scale.py).
    return len([query for query in queries if "django_q_schedule" not in query["sql"]])


def test_checkout_query_count_does_not_grow_with_the_cart(db):
    one, fifty = checkout_queries(1), checkout_queries(50)

    assert one == fifty
    assert fifty <= 12


def test_a_repeated_request_with_the_same_idempotency_key_returns_the_first_order(api, user, goods_in_stock, address):
    goods = goods_in_stock(stock=10)
    fill_cart(user, (goods, 2))

    first = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert stock_of(goods) == 8
    assert Order.objects.count() == 1


def test_a_retry_after_the_cart_was_refilled_still_returns_the_first_order(api, user, goods_in_stock, address):
    goods = goods_in_stock(stock=10)
    fill_cart(user, (goods, 2))
    first = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k-2").json()
    fill_cart(user, (goods, 1))

    retry = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert retry.json()["id"] == first["id"]
    assert stock_of(goods) == 8
    assert CartItem.objects.filter(user=user).count() == 1


def test_an_idempotency_key_reused_for_another_body_is_refused(api, user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(), 1))
    api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    response = api.post("/api/orders/", {**address, "note": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_user(api, client_for, user, other_user, goods_in_stock, address):
    goods = goods_in_stock(stock=10)
    fill_cart(user, (goods, 1))
    fill_cart(other_user, (goods, 1))

    mine = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="same")
    theirs = client_for(other_user).post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.parametrize(
    "change",
    [
        {"address": ""},
        {"address": None},
        {"signer_name": "x" * 51},
        {"signer_mobile": "call me"},
        {"note": "n" * 501},
        {"post": ["12345"]},
    ],
)
def test_invalid_checkout_input_is_a_400_and_writes_nothing(api, user, goods_in_stock, address, change):
    fill_cart(user, (goods_in_stock(), 1))
    before = shop_state()

    response = api.post("/api/orders/", {**address, **change}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert shop_state() == before


def test_an_overlong_idempotency_key_is_a_400(api, user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(), 1))

    response = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101)

    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_checkouts_are_throttled_per_user(api, client_for, other_user, user, goods_in_stock, address, settings):
    settings.CHECKOUT_THROTTLE_RATE = "2/minute"
    goods = goods_in_stock(stock=10)
    statuses = []
    for _ in range(3):
        fill_cart(user, (goods, 1))
        statuses.append(api.post("/api/orders/", address, format="json").status_code)
    fill_cart(other_user, (goods, 1))

    throttled = api.post("/api/orders/", address, format="json")
    someone_else = client_for(other_user).post("/api/orders/", address, format="json")

    assert statuses == [201, 201, 429]
    assert throttled.json()["code"] == "throttled"
    assert someone_else.status_code == 201
    assert Order.objects.filter(user=user).count() == 2


def test_pricing_is_a_pure_function_of_the_cart_lines_and_the_goods():
    """No database: the lines get each goods' name and price, the total is exact Decimal arithmetic."""
    from types import SimpleNamespace as Line

    goods_by_id = {1: Line(name="tea", price=Decimal("0.10")), 2: Line(name="cup", price=Decimal("3.33"))}

    lines, pay_price = price_lines(items=[Line(goods_id=1, nums=3), Line(goods_id=2, nums=2)], goods_by_id=goods_by_id)

    assert [(line.goods_name, line.goods_price, line.nums) for line in lines] == [
        ("tea", Decimal("0.10"), 3),
        ("cup", Decimal("3.33"), 2),
    ]
    assert pay_price == Decimal("6.96")
    with pytest.raises(OrderTooLarge):
        price_lines(items=[Line(goods_id=1, nums=2)], goods_by_id={1: Line(name="gold", price=MAX_PAY_PRICE)})
