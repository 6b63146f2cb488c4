"""django-q2's schedule admin for superusers only, and the check that no one else holds a schedule write.

A schedule runs any importable function with any arguments in a worker, so adding or changing one is
running code on the server.
"""

from django.contrib import admin
from django.core import checks
from django.db import DatabaseError
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule

SCHEDULE_WRITE_PERMISSIONS = ("add_schedule", "change_schedule")


class SuperuserScheduleAdmin(DjangoQScheduleAdmin):
    """Show django-q2's schedules to whoever may view them; let only superusers add or change one."""

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


def use_superuser_schedule_admin(site: admin.AdminSite) -> None:
    """Replace django-q2's schedule admin on the site (it registers its own at autodiscover)."""
    if site.is_registered(Schedule):
        site.unregister(Schedule)
    site.register(Schedule, SuperuserScheduleAdmin)


@checks.register(checks.Tags.database, checks.Tags.security)
def check_schedule_permissions(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn (``manage.py check --database default``) for each group or non-superuser holding a schedule write."""
    if not databases or "default" not in databases:
        return []
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    held = {"permissions__content_type__app_label": "django_q", "permissions__codename__in": SCHEDULE_WRITE_PERMISSIONS}
    try:
        groups = list(Group.objects.filter(**held).distinct().values_list("name", flat=True))
        users = list(
            get_user_model()
            .objects.filter(
                is_superuser=False, **{key.replace("permissions", "user_permissions"): v for key, v in held.items()}
            )
            .distinct()
            .values_list("username", flat=True)
        )
    except DatabaseError:  # not migrated yet
        return []
    holders = [f"group {name!r}" for name in sorted(groups)] + [f"user {name!r}" for name in sorted(users)]
    if not holders:
        return []
    return [
        checks.Warning(
            "Outside the superusers, " + ", ".join(holders) + " hold django_q.add_schedule or change_schedule: "
            "a schedule runs any importable function in a worker.",
            hint="Remove those permissions; the schedule admin lets only superusers add or change schedules anyway.",
            id="mall.W001",
        )
    ]
