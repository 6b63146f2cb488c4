from django.conf import settings
from django.db import models

from goods.models import Goods


class Stock(models.Model):
    """How many units of one goods are left; changed only through ``inventory.services``."""

    # PROTECT: a goods with stock (and a ledger) is never deleted; it leaves the shop by going off sale.
    goods = models.OneToOneField(Goods, on_delete=models.PROTECT, primary_key=True, related_name="stock")
    quantity = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["goods_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="stock_quantity_non_negative"),
        ]

    def __str__(self) -> str:
        return str(self.goods)


class StockMove(models.Model):
    """The ledger: every change of a stock quantity, so Σ adjust + Σ return − Σ sell = quantity."""

    class Kind(models.TextChoices):
        SELL = "sell", "sell"
        RETURN = "return", "return"
        ADJUST = "adjust", "adjust"  # staff changes, including the initial quantity (signed)

    goods = models.ForeignKey(Goods, on_delete=models.PROTECT, related_name="stock_moves")
    # NULL for staff adjustments, which the per-order unique constraint must not cover.
    order_no = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    kind = models.CharField(max_length=10, choices=Kind.choices)
    quantity = models.IntegerField(help_text="units; positive for sell and return, signed for adjust")
    created_at = models.DateTimeField(auto_now_add=True)
    # Who made a staff adjustment (NULL for order moves, seeding and commands). PROTECT: the ledger
    # keeps its author; deactivate a staff account instead of deleting it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["order_no", "kind"], name="stockmove_order_kind")]
        constraints = [
            # One sell and at most one return per order and goods: a second return is refused by the DB.
            models.UniqueConstraint(fields=["order_no", "goods", "kind"], name="stockmove_once_per_order"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} × {self.goods_id} ({self.order_no or 'staff'})"
