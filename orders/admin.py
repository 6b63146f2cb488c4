from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from orders.errors import OrderNotPending
from orders.models import Order, OrderLine
from orders.services import cancel_order


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["goods", "goods_name", "goods_price", "nums"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["order_no", "user", "status", "pay_price", "created_at", "expires_at", "open_trace"]
    list_filter = ["status"]
    search_fields = ["order_no", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
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
        "idempotency_key",
    ]
    fields = readonly_fields + ["address", "signer_name", "signer_mobile", "post", "note"]

    @admin.display(description="trace")
    def open_trace(self, order):
        if not order.trace_id:
            return "-"
        return format_html(
            '<a href="{}/trace/{}" target="_blank" rel="noopener">Open trace</a>',
            settings.JAEGER_UI_URL,
            order.trace_id,
        )

    @admin.action(description="Cancel selected pending orders (returns their stock)", permissions=["change"])
    def cancel_pending(self, request, queryset):
        cancelled = skipped = 0
        for order in queryset:
            try:
                cancel_order(order=order)
                cancelled += 1
            except OrderNotPending:
                skipped += 1
        self.message_user(request, f"Cancelled {cancelled} order(s); {skipped} were not pending.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False  # orders are placed through the checkout

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger refers to them
