from django.contrib import admin
from django.shortcuts import redirect

from traces.models import TraceSpan


@admin.register(TraceSpan)
class TraceSpanAdmin(admin.ModelAdmin):
    """The admin index's entry to the trace views (its list is the recent-traces page, not a table of spans)."""

    def changelist_view(self, request, extra_context=None):
        return redirect("trace-list")

    def has_add_permission(self, request):
        return False  # written by the store only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # pruned by the store itself
