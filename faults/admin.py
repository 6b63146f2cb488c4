from django.contrib import admin

from faults.models import FaultRule
from faults.selectors import fault_injection_allowed, forget_cached_rules


@admin.register(FaultRule)
class FaultRuleAdmin(admin.ModelAdmin):
    """Fault rules, for superusers only: a fault is a switch on the whole shop."""

    list_display = ("step", "kind", "milliseconds", "rate", "expires_at", "created_at")
    fields = ("step", "kind", "milliseconds", "rate", "expires_at")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        # Refused like the command when fault injection is off: a stored rule would silently do nothing.
        return self.has_module_permission(request) and fault_injection_allowed()

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)  # removing a rule is always safe

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_cached_rules()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        forget_cached_rules()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        forget_cached_rules()
