"""Stock in the admin, and goods with their stock: every stock edit goes through ``inventory.services``
with the quantity the page showed. ``GoodsAdmin`` lives here, not in ``goods``: the goods page edits
the goods' stock too, and inventory depends on goods, never the other way round.

The quantity box carries, as a hidden input, the quantity the page showed (``expected_quantity``).
A save changes only the rows whose box differs from what was shown, and only if the stock is still
what was shown (``set_stock_quantity(expected_quantity=...)``). Otherwise the row is left alone
and the conflict is reported on the page with the current quantity. In the stock list the other
edited rows of the same save still apply: each row is an independent decision of the operator,
and refusing them all would make them re-type edits that conflicted with nothing.
"""

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.http import HttpResponseRedirect
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from goods.models import Goods
from inventory.errors import StockChanged
from inventory.locks import lock_goods_rows, lock_stock_rows
from inventory.models import Stock, StockMove
from inventory.services import set_stock_quantity

LOW_STOCK = 10


def ledger_time(moment) -> str:
    """Show a ledger timestamp to the second (microseconds are noise to a reader)."""
    return date_format(localtime(moment), "Y-m-d H:i:s")


class QuantityInput(forms.NumberInput):
    """The quantity box, followed by the quantity the page showed as a hidden ``expected_quantity`` input."""

    shown_name: str | None = None
    shown_value = None

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        if self.shown_name is None:
            return html
        shown = "" if self.shown_value is None else self.shown_value
        return html + format_html('<input type="hidden" name="{}" value="{}">', self.shown_name, shown)


class StockEditForm(forms.ModelForm):
    """Stock quantity as staff edit it: the edit is relative to the quantity the page showed."""

    expected_quantity = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    class Meta:
        model = Stock
        fields = ["quantity"]
        widgets = {"quantity": QuantityInput}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        widget = self.fields["quantity"].widget
        widget.shown_name = self.add_prefix("expected_quantity")
        # A re-displayed form keeps the quantity first shown, not the one typed.
        widget.shown_value = self.data.get(widget.shown_name) if self.is_bound else self.instance.quantity

    def clean(self):
        cleaned = super().clean()
        if self.is_bound and cleaned.get("expected_quantity") is None and "quantity" in cleaned:
            raise forms.ValidationError("This page did not say which quantity it showed; reload it and edit again.")
        return cleaned

    def has_changed(self):
        """Tell whether the operator changed the box: it differs from what the page showed (not the database now)."""
        if hasattr(self, "cleaned_data") and "quantity" in self.cleaned_data:
            return self.cleaned_data["quantity"] != self.cleaned_data.get("expected_quantity")
        return super().has_changed()


def save_stock_edit(request, *, goods_id: int, form: StockEditForm) -> Stock | None:
    """Apply one edited quantity box through the service; a conflict is reported on the page (None)."""
    try:
        return set_stock_quantity(
            goods_id=goods_id,
            quantity=form.cleaned_data["quantity"],
            expected_quantity=form.cleaned_data["expected_quantity"],
            user=request.user,
        )
    except StockChanged as conflict:
        stock = Stock.objects.select_related("goods").get(goods_id=goods_id)
        request.stock_conflicts = [*getattr(request, "stock_conflicts", []), stock]
        messages.error(
            request,
            f"“{stock}” was NOT changed: its stock went from {conflict.extra['expected_quantity']} to "
            f"{conflict.extra['quantity']} since the page was loaded (orders or another edit); "
            "enter your change again.",
        )
        return None


def had_stock_conflict(request) -> bool:
    return bool(getattr(request, "stock_conflicts", None))


def _edited_goods_ids(data) -> list[int]:
    """Return the goods ids of the stock list rows whose box differs from the quantity the page showed."""
    try:
        rows = range(min(int(data.get("form-TOTAL_FORMS", 0)), 1000))
    except ValueError:
        return []  # the formset's own validation reports it
    return sorted(
        int(data[f"form-{row}-goods"])
        for row in rows
        if data.get(f"form-{row}-goods", "").isdigit()
        and data.get(f"form-{row}-quantity") != data.get(f"form-{row}-expected_quantity")
    )


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
    """The ledger of a goods, read-only, newest first."""

    model = StockMove
    fk_name = "goods"
    fields = ["when", "kind", "quantity", "order_no", "user"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    @admin.display(description="when")
    def when(self, move):
        return ledger_time(move.created_at)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StockInline(admin.StackedInline):
    """Stock on the goods page; saved by ``GoodsAdmin.save_formset`` through the service (ledgered)."""

    model = Stock
    form = StockEditForm
    fields = ["quantity"]
    can_delete = False
    extra = 1
    max_num = 1

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["goods", "quantity", "updated_at"]
    list_editable = ["quantity"]
    list_filter = [LowStockFilter]
    search_fields = ["goods__name"]
    list_select_related = ["goods"]
    form = StockEditForm
    readonly_fields = ["goods", "updated_at", "ledger"]
    fields = ["goods", "quantity", "updated_at", "ledger"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("goods")

    def get_changelist_form(self, request, **kwargs):
        return StockEditForm

    def changelist_view(self, request, extra_context=None):
        edited = _edited_goods_ids(request.POST) if request.method == "POST" and "_save" in request.POST else []
        if not edited:
            return super().changelist_view(request, extra_context)
        # The list saves its rows in page order (any sort column); take their locks first, in the one
        # order of inventory.locks (goods, then stock, by goods id), so a list save cannot deadlock.
        with transaction.atomic():
            lock_goods_rows(edited)
            lock_stock_rows(edited)
            return super().changelist_view(request, extra_context)

    @admin.display(description="ledger (latest 50 moves, newest first)")
    def ledger(self, stock):
        moves = StockMove.objects.filter(goods_id=stock.goods_id).select_related("user").order_by("-id")[:50]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((ledger_time(m.created_at), m.kind, m.quantity, m.order_no or "-", m.user or "-") for m in moves),
        )
        return format_html(
            "<table><tr><th>when</th><th>kind</th><th>units</th><th>order</th><th>staff</th></tr>{}</table>", rows
        )

    def has_add_permission(self, request):
        return False  # stock rows are created with their goods

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger refers to it; a goods leaves the shop by going off sale

    def save_model(self, request, obj, form, change):
        if form.has_changed():
            obj.stock_conflict = save_stock_edit(request, goods_id=obj.goods_id, form=form) is None
            if not obj.stock_conflict:
                request.stock_saved = getattr(request, "stock_saved", 0) + 1

    def log_change(self, request, obj, message):
        if not getattr(obj, "stock_conflict", False):
            return super().log_change(request, obj, message)
        return None

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if level == messages.SUCCESS and had_stock_conflict(request):
            # Django counts every edited row as changed; say what really happened.
            saved = getattr(request, "stock_saved", 0)
            if saved:
                super().message_user(request, f"{saved} other stock edit(s) saved.", messages.SUCCESS)
            return
        super().message_user(request, message, level, *args, **kwargs)

    def response_change(self, request, obj):
        if had_stock_conflict(request):
            return HttpResponseRedirect(request.path)  # the form again, with the current quantity
        return super().response_change(request, obj)


@admin.register(StockMove)
class StockMoveAdmin(admin.ModelAdmin):
    list_display = ["id", "when", "goods", "kind", "quantity", "order_no", "user"]
    list_filter = ["kind"]
    search_fields = ["order_no", "goods__name"]
    list_select_related = ["goods", "user"]
    ordering = ["-id"]

    @admin.display(description="when", ordering="id")
    def when(self, move):
        return ledger_time(move.created_at)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
        return goods.stock_quantity
