from rest_framework import serializers

from inventory.models import Stock


class StockSerializer(serializers.ModelSerializer):
    goods_name = serializers.CharField(source="goods.name", read_only=True)

    class Meta:
        model = Stock
        fields = ["goods", "goods_name", "quantity", "updated_at"]
        read_only_fields = ["goods", "updated_at"]


class StockQuantitySerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=0, max_value=2_000_000_000)
