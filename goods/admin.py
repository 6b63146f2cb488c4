from django.contrib import admin
from django.db import models
from django.http import HttpResponseRedirect

from goods.models import Goods
from inventory.admin import StockInline, StockMoveInline, had_stock_conflict, save_stock_edit
from inventory.models import Stock
from inventory.services import set_stock_quantity


@admin.register(Goods)
class GoodsAdmin(admin.ModelAdmin):
    """Goods with their stock. Saving updates the goods row, then its stock row: the lock order of
    ``inventory.locks``. Goods are never deleted (orders and the ledger refer to them): they leave
    the shop by being taken off sale."""

    list_display = ["id", "name", "price", "on_sale", "stock_quantity", "updated_at"]
    list_filter = ["on_sale"]
    search_fields = ["name"]
    list_select_related = ["stock"]
    inlines = [StockInline, StockMoveInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # a new goods gets its stock row from the inventory service, at 0 until the inline sets it
            set_stock_quantity(goods_id=obj.pk, quantity=0, expected_quantity=0, user=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Stock:
            return super().save_formset(request, form, formset, change)
        # Stock goes through the inventory service (checked against the quantity shown, ledgered);
        # the formset itself saves nothing. What it reports feeds the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for stock_form in formset.forms:
            if stock_form.has_changed() and "quantity" in stock_form.cleaned_data:
                stock = save_stock_edit(request, goods_id=form.instance.pk, form=stock_form)
                if stock is not None:
                    formset.changed_objects.append((stock, ["quantity"]))
        return None

    def response_change(self, request, obj):
        if had_stock_conflict(request):
            return HttpResponseRedirect(request.path)  # the goods saved; its stock shown again as it is now
        return super().response_change(request, obj)

    @admin.display(description="stock", ordering="stock__quantity")
    def stock_quantity(self, goods):
        stock = getattr(goods, "stock", None)
        return stock.quantity if stock else 0
