from rest_framework import serializers

from orders.models import Order, OrderLine


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["goods", "goods_name", "goods_price", "nums"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "order_no",
            "status",
            "pay_price",
            "address",
            "signer_name",
            "signer_mobile",
            "post",
            "note",
            "created_at",
            "expires_at",
            "paid_at",
            "ended_at",
            "trace_id",
            "lines",
        ]
        read_only_fields = fields


class CheckoutSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=255)
    signer_name = serializers.CharField(max_length=50)
    signer_mobile = serializers.RegexField(r"^\+?[0-9][0-9 \-]{4,18}$", max_length=20)
    post = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
