"""seed_demo: a shop to play with, created once however often the command runs."""

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from carts.models import CartItem
from goods.models import Goods
from inventory.models import Stock, StockMove
from inventory.services import set_stock_quantity
from mall.demo import demo_catalog

pytestmark = pytest.mark.django_db
PASSWORD = "seed-test-password"


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"password": PASSWORD, **options})
    return out.getvalue()


def shop_state() -> dict:
    """Everything seed_demo may write, as comparable values."""
    User = get_user_model()
    return {
        "goods": sorted(Goods.objects.values_list("id", "name", "price")),
        "stock": sorted(Stock.objects.values_list("goods_id", "quantity")),
        "ledger": StockMove.objects.count(),
        "users": sorted(User.objects.values_list("username", "password", "is_staff")),
        "cart": sorted(CartItem.objects.values_list("user__username", "goods_id", "nums", "checked")),
    }


def test_creates_goods_with_ledgered_stock_users_with_full_carts_and_the_admin():
    output = seed(goods=6, stock=50, users=3, staff=True)

    goods = list(Goods.objects.order_by("id"))
    assert len(goods) == 6
    assert len({item.name for item in goods}) == 6
    assert all(isinstance(item.price, Decimal) and item.price > 0 for item in goods)
    assert all(item.on_sale for item in goods)
    assert dict(Stock.objects.values_list("goods_id", "quantity")) == {item.pk: 50 for item in goods}
    # The initial quantity went through the inventory service: one adjust row per goods.
    assert sorted(StockMove.objects.values_list("goods_id", "kind", "quantity")) == [
        (item.pk, StockMove.Kind.ADJUST, 50) for item in goods
    ]

    User = get_user_model()
    for username in ("user1", "user2", "user3"):
        user = User.objects.get(username=username)
        assert user.check_password(PASSWORD)
        assert not user.is_staff
        lines = CartItem.objects.filter(user=user)
        assert 1 <= lines.count() <= 3
        assert all(line.checked for line in lines)
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.check_password(PASSWORD)

    assert "Created 6 goods" in output
    assert "user1..user3" in output and PASSWORD in output
    assert "'admin'" in output


def test_a_second_run_creates_nothing_new():
    seed(goods=5, stock=20, users=2, staff=True)
    before = shop_state()

    output = seed(goods=5, stock=20, users=2, staff=True)

    assert shop_state() == before
    assert "Nothing new" in output


def test_what_exists_is_left_alone_and_only_the_missing_goods_are_added():
    seed(goods=3, stock=20, users=1)
    first = Goods.objects.order_by("id").first()
    set_stock_quantity(goods_id=first.pk, quantity=7)  # sold meanwhile

    output = seed(goods=5, stock=20, users=1, password="another-password")

    assert Goods.objects.count() == 5
    assert Stock.objects.get(goods=first).quantity == 7
    assert get_user_model().objects.get(username="user1").check_password(PASSWORD)
    assert "Created 2 goods" in output
    assert "passwords unchanged" in output


def test_restock_sets_the_demo_goods_back_through_the_ledger():
    seed(goods=2, stock=20, users=0)
    first = Goods.objects.order_by("id").first()
    set_stock_quantity(goods_id=first.pk, quantity=3)

    seed(goods=2, stock=20, users=0, restock=True)

    assert Stock.objects.get(goods=first).quantity == 20
    assert StockMove.objects.filter(goods=first, kind=StockMove.Kind.ADJUST).last().quantity == 17


def test_a_cart_with_lines_is_not_filled_again():
    seed(goods=4, users=1)
    user = get_user_model().objects.get(username="user1")
    CartItem.objects.filter(user=user).exclude(pk=CartItem.objects.filter(user=user).first().pk).delete()

    seed(goods=4, users=1)

    assert CartItem.objects.filter(user=user).count() == 1


def test_if_empty_does_not_touch_a_shop_that_has_goods(goods_in_stock):
    goods_in_stock()

    output = seed(goods=5, users=2, staff=True, if_empty=True)

    assert Goods.objects.count() == 1
    assert not get_user_model().objects.exists()
    assert output.startswith("Not seeding")


def test_the_demo_catalog_is_the_same_on_every_call_with_distinct_names():
    catalog = demo_catalog(600)

    assert catalog == demo_catalog(600)
    assert len({item.name for item in catalog}) == 600
    assert all(item.price == item.price.quantize(Decimal("0.01")) and item.price > 0 for item in catalog)


def test_negative_sizes_are_refused():
    with pytest.raises(CommandError, match="negative"):
        seed(goods=-1)
