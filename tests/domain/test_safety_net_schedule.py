"""The safety net repairs itself: a worker re-creates the sweep schedule, and a system check reports it missing."""

import pytest
from django.core import checks
from django_q.models import Schedule

from orders.expiry import SAFETY_NET_FUNC, SAFETY_NET_NAME, ensure_safety_net_schedule
from tests.support import qcluster, read_log, run_concurrently, shop_env, wait_until


def check_ids() -> set[str]:
    return {message.id for message in checks.run_checks(databases=["default"])}


@pytest.mark.django_db
def test_the_system_check_reports_a_missing_schedule():
    ensure_safety_net_schedule()
    assert "orders.W001" not in check_ids()

    Schedule.objects.filter(name=SAFETY_NET_NAME).delete()

    assert "orders.W001" in check_ids()


@pytest.mark.django_db
def test_ensure_creates_the_every_minute_sweep_once():
    Schedule.objects.filter(name=SAFETY_NET_NAME).delete()

    assert ensure_safety_net_schedule() is True
    assert ensure_safety_net_schedule() is False

    schedule = Schedule.objects.get(name=SAFETY_NET_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        SAFETY_NET_FUNC,
        Schedule.MINUTES,
        1,
        -1,
    )


@pytest.mark.django_db(transaction=True)
def test_workers_starting_together_leave_one_schedule():
    Schedule.objects.filter(name=SAFETY_NET_NAME).delete()

    run_concurrently(lambda _: ensure_safety_net_schedule(), list(range(4)))

    assert Schedule.objects.filter(name=SAFETY_NET_NAME).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_starting_worker_recreates_a_deleted_schedule(tmp_path):
    Schedule.objects.filter(name=SAFETY_NET_NAME).delete()

    with qcluster(env=shop_env(), log_dir=tmp_path):
        try:
            wait_until(
                lambda: Schedule.objects.filter(name=SAFETY_NET_NAME, func=SAFETY_NET_FUNC).exists(),
                timeout=60,
                what="the worker to re-create the safety net schedule",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{read_log(tmp_path, 'qcluster')[-3000:]}") from None
    assert Schedule.objects.filter(name=SAFETY_NET_NAME).count() == 1
    assert "orders.W001" not in check_ids()
