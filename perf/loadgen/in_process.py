"""Orders through the service functions the API views call, in this process, traced by the shop's own tracer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.db import connections
from opentelemetry import trace

from carts.selectors import cart_items
from carts.services import add_to_cart, delete_cart_item
from goods.selectors import goods_list
from mall.errors import DomainError
from mall.telemetry import flush_telemetry
from orders.checkout import create_order
from orders.services import pay_order
from perf.loadgen.plan import Shopper
from perf.loadgen.shop import ORDER_DETAILS, Failed, LoadSetupError, Refused, Shop


@contextmanager
def _answers() -> Iterator[None]:
    """A domain error is the shop's refusal; any other exception is what a 500 is over HTTP (a bug, the database)."""
    try:
        yield
    except DomainError as exc:
        raise Refused(exc.code) from exc
    except Exception as exc:
        raise Failed(type(exc).__name__, cause=exc) from exc


class InProcessShop(Shop):
    mode = "in-process"

    def __init__(self):
        self.tracer = trace.get_tracer("mall.loadgen")

    def shoppers(self, count: int) -> list[Shopper]:
        usernames = [f"user{n}" for n in range(1, count + 1)]
        users = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
        missing = [name for name in usernames if name not in users]
        if missing:
            raise LoadSetupError(
                f"no user {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}: "
                f"run `manage.py seed_demo --users {count}` first"
            )
        return [Shopper(username=name, user=users[name]) for name in usernames]

    def goods_in_stock(self) -> list[int]:
        return list(goods_list(on_sale=True).filter(stock__quantity__gt=0).values_list("id", flat=True))

    def empty_cart(self, shopper: Shopper) -> None:
        with _answers():
            for item in cart_items(user=shopper.user):
                delete_cart_item(item=item)

    def add_to_cart(self, shopper: Shopper, goods_id: int, nums: int) -> None:
        with _answers():
            add_to_cart(user=shopper.user, goods_id=goods_id, quantity=nums)

    def check_out(self, shopper: Shopper) -> tuple[int, object]:
        with _answers():
            order = create_order(user=shopper.user, **ORDER_DETAILS).order
        return order.pk, order

    def pay(self, shopper: Shopper, order: object) -> None:
        with _answers():
            pay_order(order=order)

    def end_thread(self) -> None:
        connections.close_all()  # this thread's connections

    def finish(self) -> None:
        flush_telemetry()
