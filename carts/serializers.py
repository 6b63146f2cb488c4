from django.conf import settings
from rest_framework import serializers


# Declared fields rather than a ModelSerializer, which rebuilds them from the model for every response.
class CartItemSerializer(serializers.Serializer):
    """A line of the caller's cart, with the goods' name and current price."""

    id = serializers.IntegerField(read_only=True)
    goods = serializers.IntegerField(source="goods_id", read_only=True)
    goods_name = serializers.CharField(source="goods.name", read_only=True)
    price = serializers.DecimalField(source="goods.price", max_digits=12, decimal_places=2, read_only=True)
    nums = serializers.IntegerField(read_only=True)
    checked = serializers.BooleanField(read_only=True)


class CartItemCreateSerializer(serializers.Serializer):
    goods = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    nums = serializers.IntegerField(min_value=1, max_value=settings.MAX_CART_LINE_NUMS)
    checked = serializers.BooleanField(default=True, initial=True)  # the HTML form shows it ticked, as created


class CartItemUpdateSerializer(serializers.Serializer):
    nums = serializers.IntegerField(min_value=1, max_value=settings.MAX_CART_LINE_NUMS, required=False)
    checked = serializers.BooleanField(required=False)
