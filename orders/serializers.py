"""Order input and output.

The output serializers declare their fields: a ``ModelSerializer`` rebuilds its fields from the
model on every response, a large share of a checkout's CPU (figures: docs/PERFORMANCE.md).
"""

from rest_framework import serializers

from orders.models import Order, OrderEvent

# Money: decimal strings with 2 places (COERCE_DECIMAL_TO_STRING), the model fields' precision.
_PRICE = {"max_digits": 12, "decimal_places": 2, "read_only": True}


class OrderLineListSerializer(serializers.ListSerializer):
    def get_attribute(self, order):
        # The checkout passes the lines it has just saved (context "lines"): they are not read back.
        lines = self.context.get("lines")
        return lines if lines is not None else super().get_attribute(order)


class OrderLineSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = OrderLineListSerializer

    goods = serializers.IntegerField(source="goods_id", read_only=True)
    goods_name = serializers.CharField(read_only=True)
    goods_price = serializers.DecimalField(**_PRICE)
    nums = serializers.IntegerField(read_only=True)


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    order_no = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Order.Status.choices, read_only=True)
    pay_price = serializers.DecimalField(**{**_PRICE, "max_digits": 14})
    address = serializers.CharField(read_only=True)
    signer_name = serializers.CharField(read_only=True)
    signer_mobile = serializers.CharField(read_only=True)
    post = serializers.CharField(read_only=True)
    note = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    paid_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ended_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="when it was cancelled or closed")
    trace_id = serializers.CharField(read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)


class OrderEventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OrderEvent.Kind.choices, read_only=True)
    at = serializers.DateTimeField(read_only=True)
    actor = serializers.ChoiceField(choices=OrderEvent.Actor.choices, read_only=True)
    trace_id = serializers.CharField(read_only=True, help_text='the 32-hex trace that made the change; "" if untraced')


class OrderDetailSerializer(OrderSerializer):
    """One order with its lifecycle, oldest event first (the list leaves the events out: no query per order)."""

    events = OrderEventSerializer(many=True, read_only=True)


class CheckoutSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=255)
    signer_name = serializers.CharField(max_length=50)
    signer_mobile = serializers.RegexField(r"^\+?[0-9][0-9 \-]{4,18}$", max_length=20)
    post = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
