from django.contrib import admin

from goods.models import Goods
from inventory.admin import StockInline, StockMoveInline
from inventory.models import Stock
from inventory.services import set_stock_quantity


@admin.register(Goods)
class GoodsAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "on_sale", "stock_quantity", "updated_at"]
    list_filter = ["on_sale"]
    search_fields = ["name"]
    list_select_related = ["stock"]
    inlines = [StockInline, StockMoveInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Stock:
            return super().save_formset(request, form, formset, change)
        # Stock changes go through the inventory service, which writes the ledger row.
        for stock_form in formset.forms:
            if stock_form.has_changed() and "quantity" in stock_form.cleaned_data:
                set_stock_quantity(goods_id=form.instance.pk, quantity=stock_form.cleaned_data["quantity"])

    @admin.display(description="stock", ordering="stock__quantity")
    def stock_quantity(self, goods):
        stock = getattr(goods, "stock", None)
        return stock.quantity if stock else 0
