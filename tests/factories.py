from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from carts.services import add_to_cart
from goods.models import Goods
from inventory.services import set_stock_quantity

TEST_PASSWORD = "correct-horse-battery-staple"
# Where a test checkout sends its order (the address fixture gives a copy).
ADDRESS = {"address": "1 Market Street, Springfield", "signer_name": "Ada Lovelace", "signer_mobile": "+15550100"}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"shopper{n}")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class GoodsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goods
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Goods {n}")
    price = Decimal("10.00")
    on_sale = True

    @factory.post_generation
    def stock_quantity(obj, create, extracted, **kwargs):
        if create:
            set_stock_quantity(goods_id=obj.pk, quantity=100 if extracted is None else extracted)


def fill_cart(user, *lines):
    """Put (goods, nums) lines in the user's cart, checked."""
    for goods, nums in lines:
        add_to_cart(user=user, goods_id=goods.pk, quantity=nums)
