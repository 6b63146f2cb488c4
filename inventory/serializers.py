from rest_framework import serializers

from inventory.models import Stock
from inventory.services import MAX_STOCK_QUANTITY


class StockSerializer(serializers.ModelSerializer):
    goods_name = serializers.CharField(source="goods.name", read_only=True)

    class Meta:
        model = Stock
        fields = ["goods", "goods_name", "quantity", "updated_at"]
        read_only_fields = ["goods", "updated_at"]


class StockEditSerializer(serializers.Serializer):
    """Either ``{"delta": k}`` or ``{"quantity": n, "expected_quantity": m}``: never a bare quantity.

    A bare quantity would write back whatever the client read earlier, undoing the sales since.
    """

    delta = serializers.IntegerField(required=False, min_value=-MAX_STOCK_QUANTITY, max_value=MAX_STOCK_QUANTITY)
    quantity = serializers.IntegerField(required=False, min_value=0, max_value=MAX_STOCK_QUANTITY)
    expected_quantity = serializers.IntegerField(required=False, min_value=0, max_value=MAX_STOCK_QUANTITY)

    def validate(self, attrs):
        if "delta" in attrs:
            if "quantity" in attrs or "expected_quantity" in attrs:
                raise serializers.ValidationError('Send either "delta" or "quantity" with "expected_quantity".')
            return attrs
        if "quantity" not in attrs:
            raise serializers.ValidationError('Send "delta", or "quantity" with "expected_quantity".')
        if "expected_quantity" not in attrs:
            raise serializers.ValidationError(
                {"expected_quantity": ['Required with "quantity": the quantity you read (a sale since is not undone).']}
            )
        return attrs
