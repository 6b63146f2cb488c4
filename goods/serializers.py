from rest_framework import serializers

from goods.models import Goods


class GoodsSerializer(serializers.ModelSerializer):
    stock = serializers.IntegerField(source="stock_quantity", read_only=True)

    class Meta:
        model = Goods
        fields = ["id", "name", "price", "stock", "description", "image_url", "on_sale"]
