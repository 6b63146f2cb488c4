from django.contrib import admin

from carts.models import CartItem


@admin.register(CartItem)
class CartItemAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "goods", "nums", "checked", "updated_at"]
    list_filter = ["checked"]
    search_fields = ["user__username", "goods__name"]
    list_select_related = ["user", "goods"]
    raw_id_fields = ["user", "goods"]
