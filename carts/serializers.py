from django.conf import settings
from rest_framework import serializers

from carts.models import CartItem


class CartItemSerializer(serializers.ModelSerializer):
    goods_name = serializers.CharField(source="goods.name", read_only=True)
    price = serializers.DecimalField(source="goods.price", max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = CartItem
        fields = ["id", "goods", "goods_name", "price", "nums", "checked"]
        read_only_fields = fields


class CartItemCreateSerializer(serializers.Serializer):
    goods = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    nums = serializers.IntegerField(min_value=1, max_value=settings.MAX_CART_LINE_NUMS)
    checked = serializers.BooleanField(default=True)


class CartItemUpdateSerializer(serializers.Serializer):
    nums = serializers.IntegerField(min_value=1, max_value=settings.MAX_CART_LINE_NUMS, required=False)
    checked = serializers.BooleanField(required=False)
