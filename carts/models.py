from django.conf import settings
from django.db import models

from goods.models import Goods


class CartItem(models.Model):
    """One line of a user's cart; ``checked`` lines are the ones a checkout turns into an order."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cart_items")
    goods = models.ForeignKey(Goods, on_delete=models.CASCADE, related_name="+")
    nums = models.PositiveIntegerField()
    checked = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "goods"], name="cartitem_one_line_per_goods"),
            models.CheckConstraint(condition=models.Q(nums__gt=0), name="cartitem_nums_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.nums} × {self.goods_id}"
