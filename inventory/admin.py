from django.contrib import admin
from django.utils.html import format_html, format_html_join

from inventory.models import Stock, StockMove
from inventory.services import set_stock_quantity

LOW_STOCK = 10


class LowStockFilter(admin.SimpleListFilter):
    title = "stock level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [("out", "out of stock"), ("low", f"low (< {LOW_STOCK})")]

    def queryset(self, request, queryset):
        if self.value() == "out":
            return queryset.filter(quantity=0)
        if self.value() == "low":
            return queryset.filter(quantity__lt=LOW_STOCK)
        return queryset


class StockMoveInline(admin.TabularInline):
    """The ledger of a goods, read-only."""

    model = StockMove
    fk_name = "goods"
    fields = ["created_at", "kind", "quantity", "order_no"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StockInline(admin.StackedInline):
    """Stock on the goods page; saved through the service so the change is ledgered."""

    model = Stock
    fields = ["quantity"]
    can_delete = False
    extra = 1
    max_num = 1


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["goods", "quantity", "updated_at"]
    list_editable = ["quantity"]
    list_filter = [LowStockFilter]
    search_fields = ["goods__name"]
    list_select_related = ["goods"]
    readonly_fields = ["goods", "updated_at", "ledger"]
    fields = ["goods", "quantity", "updated_at", "ledger"]

    @admin.display(description="ledger (latest 50 moves)")
    def ledger(self, stock):
        moves = StockMove.objects.filter(goods_id=stock.goods_id).order_by("-id")[:50]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((m.created_at, m.kind, m.quantity, m.order_no or "staff") for m in moves),
        )
        return format_html("<table><tr><th>when</th><th>kind</th><th>units</th><th>order</th></tr>{}</table>", rows)

    def has_add_permission(self, request):
        return False  # stock rows are created with their goods

    def save_model(self, request, obj, form, change):
        set_stock_quantity(goods_id=obj.goods_id, quantity=form.cleaned_data["quantity"])


@admin.register(StockMove)
class StockMoveAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "goods", "kind", "quantity", "order_no"]
    list_filter = ["kind"]
    search_fields = ["order_no", "goods__name"]
    list_select_related = ["goods"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
