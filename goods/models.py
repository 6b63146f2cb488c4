from decimal import Decimal

from django.db import models


class Goods(models.Model):
    name = models.CharField(max_length=200, db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    description = models.TextField(blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    on_sale = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "goods"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=Decimal("0")), name="goods_price_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def stock_quantity(self) -> int:
        """Return its quantity in stock (``inventory.Stock``, the reverse one-to-one ``stock``); 0 with no stock row.

        Read it on goods fetched with ``select_related("stock")`` (``goods.selectors.goods_list``): no query.
        """
        stock = getattr(self, "stock", None)
        return stock.quantity if stock is not None else 0
