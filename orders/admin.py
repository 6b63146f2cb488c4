from django.contrib import admin, messages
from django.utils.html import format_html

from mall.telemetry.links import order_traces_url, trace_url
from orders.errors import OrderEnded, OrderNotPending
from orders.models import Order, OrderEvent, OrderLine
from orders.services import STAFF_EDITABLE_FIELDS, cancel_order, edit_order
from traces.permissions import may_view_traces


def _trace_link(trace_id: str, text: str = "Open trace"):
    """Link to the trace where it opens (Jaeger or the built-in view), else "-"."""
    url = trace_url(trace_id)
    if url is None:
        return "-"
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, text)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["goods", "goods_name", "goods_price", "nums"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(admin.TabularInline):
    """The order's lifecycle, oldest first, each change with a link to the trace that made it."""

    model = OrderEvent
    fields = ["kind", "at", "actor", "staff_user", "trace"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if may_view_traces(request.user) else [name for name in fields if name != "trace"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="trace")
    def trace(self, event):
        return _trace_link(event.trace_id)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["order_no", "user", "status", "pay_price", "created_at", "expires_at", "open_trace"]
    list_filter = ["status"]
    search_fields = ["order_no", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderEventInline]
    actions = ["cancel_pending"]
    readonly_fields = [
        "order_no",
        "user",
        "status",
        "pay_price",
        "created_at",
        "expires_at",
        "paid_at",
        "ended_at",
        "open_trace",
        "all_traces",
        "idempotency_key",
    ]
    fields = readonly_fields + list(STAFF_EDITABLE_FIELDS)
    trace_fields = ("open_trace", "all_traces")  # shown only to users who may open traces

    def get_list_display(self, request):
        names = super().get_list_display(request)
        return names if may_view_traces(request.user) else [name for name in names if name not in self.trace_fields]

    def get_fields(self, request, obj=None):
        names = super().get_fields(request, obj)
        return names if may_view_traces(request.user) else [name for name in names if name not in self.trace_fields]

    def get_readonly_fields(self, request, obj=None):
        names = super().get_readonly_fields(request, obj)
        return names if may_view_traces(request.user) else [name for name in names if name not in self.trace_fields]

    def save_model(self, request, obj, form, change):
        """Write only the fields the form changed, through ``edit_order`` (row lock, ``edited`` event):
        a full-row save would write back a status read before a pay or close committed."""
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in STAFF_EDITABLE_FIELDS}
        try:
            edit_order(order=obj, staff_user=request.user, changes=changes)
        except OrderEnded as exc:
            obj.refresh_from_db()
            self.message_user(request, str(exc.detail), messages.ERROR)

    def save_related(self, request, form, formsets, change):
        pass  # the inlines are read-only; nothing of theirs is written

    @admin.display(description="trace")
    def open_trace(self, order):
        return _trace_link(order.trace_id)

    @admin.display(description="all traces of the order")
    def all_traces(self, order):
        url = order_traces_url(order.order_no)
        if url is None:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">Find traces by mall.order.no</a>', url)

    @admin.action(description="Cancel selected pending orders (returns their stock)", permissions=["change"])
    def cancel_pending(self, request, queryset):
        cancelled = skipped = 0
        for order in queryset:
            try:
                cancel_order(order=order, staff_user=request.user)
                cancelled += 1
            except OrderNotPending:
                skipped += 1
        self.message_user(request, f"Cancelled {cancelled} order(s); {skipped} were not pending.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False  # orders are placed through the checkout

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger refers to them
