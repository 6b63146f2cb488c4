from rest_framework import serializers

from goods.models import Goods


class GoodsSerializer(serializers.ModelSerializer):
    stock = serializers.SerializerMethodField()

    class Meta:
        model = Goods
        fields = ["id", "name", "price", "stock", "description", "image_url", "on_sale"]

    def get_stock(self, goods: Goods) -> int:
        stock = getattr(goods, "stock", None)
        return stock.quantity if stock is not None else 0
