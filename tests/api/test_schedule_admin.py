"""django-q2's schedule admin: adding or changing a schedule is running code in a worker, so only
superusers may, whatever permissions a user holds; a check warns for any other holder of those permissions.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.checks import Warning as CheckWarning
from django.test import Client
from django_q.models import Schedule

from mall.schedule_admin import check_schedule_permissions
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SCHEDULES = "/admin/django_q/schedule/"


def schedule_permissions(*codenames):
    return Permission.objects.filter(content_type__app_label="django_q", codename__in=codenames)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def a_schedule_form(func: str) -> dict:
    return {
        "name": "probe",
        "func": func,
        "schedule_type": Schedule.ONCE,
        "repeats": "-1",
        "next_run_0": "2030-01-01",
        "next_run_1": "00:00:00",
        "cluster": "",
        "intended_date_kind": "",
    }


@pytest.fixture
def schedule_writer():
    """Staff holding every schedule permission, not a superuser."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*schedule_permissions("view_schedule", "add_schedule", "change_schedule"))
    return type(user).objects.get(pk=user.pk)


def test_staff_holding_add_schedule_cannot_add_a_schedule(schedule_writer):
    client = logged_in(schedule_writer)
    assert client.get(f"{SCHEDULES}add/", secure=True).status_code == 403
    response = client.post(f"{SCHEDULES}add/", a_schedule_form("subprocess.getoutput"), secure=True)
    assert response.status_code == 403
    assert not Schedule.objects.filter(func="subprocess.getoutput").exists()
    assert client.get(SCHEDULES, secure=True).status_code == 200  # viewing stays with view_schedule


def test_staff_holding_change_schedule_cannot_change_a_schedule(schedule_writer):
    schedule = Schedule.objects.create(name="probe", func="math.floor", schedule_type=Schedule.ONCE)
    form = a_schedule_form("subprocess.getoutput")
    logged_in(schedule_writer).post(f"{SCHEDULES}{schedule.pk}/change/", form, secure=True)
    schedule.refresh_from_db()
    assert schedule.func == "math.floor"


def test_a_superuser_adds_a_schedule():
    client = logged_in(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(f"{SCHEDULES}add/", a_schedule_form("math.floor"), secure=True)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Schedule.objects.filter(func="math.floor").exists()


def warnings() -> list[CheckWarning]:
    return check_schedule_permissions(databases=["default"])


def test_the_check_warns_for_a_group_or_a_non_superuser_holding_a_schedule_write():
    assert warnings() == []
    superuser = UserFactory(is_superuser=True, username="root-ok")
    superuser.user_permissions.add(*schedule_permissions("add_schedule"))
    Group.objects.create(name="readers").permissions.add(*schedule_permissions("view_schedule"))
    assert warnings() == []  # a superuser's own grant and view_schedule are not warned about

    Group.objects.create(name="ops").permissions.add(*schedule_permissions("change_schedule"))
    UserFactory(is_staff=True, username="mallory").user_permissions.add(*schedule_permissions("add_schedule"))
    (warning,) = warnings()
    assert warning.id == "mall.W001"
    assert "group 'ops'" in warning.msg and "user 'mallory'" in warning.msg
    assert "root-ok" not in warning.msg and "readers" not in warning.msg
