"""A load run against a throttling shop does not look like success.

Any throttled checkout prints a warning naming ``CHECKOUT_THROTTLE_RATE=off``; a run where more than
half of the orders were throttled exits non-zero; the sample trace links show placed orders first.
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.models import Order
from tests.support import shop_env, shop_server

pytestmark = pytest.mark.slow

PASSWORD = "throttle-test-password"


@pytest.fixture
def seeded_shop(transactional_db, settings):
    # Users made here log in to a shop process, which does not know the suite's fast MD5 hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.ScryptPasswordHasher"]
    call_command("seed_demo", goods=6, stock=500, users=2, password=PASSWORD, stdout=StringIO())


def run_load(url: str, orders: int, *, json_summary: bool = False) -> tuple[str, str, CommandError | None]:
    out, err = StringIO(), StringIO()
    try:
        call_command(
            "place_test_orders", url=url, orders=orders, users=2, concurrency=2, lines=1, pay_ratio=0,
            password=PASSWORD, quiet=True, json=json_summary, stdout=out, stderr=err,
        )  # fmt: skip
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_a_mostly_throttled_run_warns_and_fails(seeded_shop, tmp_path):
    with shop_server(env=shop_env(CHECKOUT_THROTTLE_RATE="2/minute"), log_dir=tmp_path) as url:
        out, err, error = run_load(url, 12, json_summary=True)

    summary = json.loads(out)
    assert summary["placed"] == 4 == Order.objects.count()  # 2 users x 2 a minute
    assert summary["rejected"] == {"throttled": 8}
    assert error is not None and "8 of 12 orders were throttled" in str(error)
    assert "CHECKOUT_THROTTLE_RATE=off" in str(error)
    assert "Warning: 8 of 12 checkouts were throttled" in err and "CHECKOUT_THROTTLE_RATE=off" in err
    samples = summary["sample_traces"]
    assert [sample["outcome"] for sample in samples] == ["placed"] * 4 + ["rejected: throttled"]
    assert {s["trace_id"] for s in samples[:4]} == set(Order.objects.values_list("trace_id", flat=True))


def test_a_few_throttled_orders_warn_without_failing_the_run(seeded_shop, tmp_path):
    with shop_server(env=shop_env(CHECKOUT_THROTTLE_RATE="4/minute"), log_dir=tmp_path) as url:
        out, err, error = run_load(url, 10)

    assert error is None
    assert "Placed 8 of 10 orders" in out and "Rejected: throttled 2" in out
    assert "Warning: 2 of 10 checkouts were throttled" in err and "CHECKOUT_THROTTLE_RATE=off" in err
    sample_lines = out.split("Sample traces:")[1].strip().splitlines()
    assert len(sample_lines) == 5 and all(line.endswith("(placed)") for line in sample_lines)


def test_an_unthrottled_run_has_no_warning(seeded_shop, tmp_path):
    with shop_server(env=shop_env(CHECKOUT_THROTTLE_RATE="off"), log_dir=tmp_path) as url:
        out, err, error = run_load(url, 6)

    assert error is None and "Placed 6 of 6 orders" in out
    assert "throttled" not in err and "CHECKOUT_THROTTLE_RATE" not in err
