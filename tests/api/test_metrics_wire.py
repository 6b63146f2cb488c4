"""The checkout histograms as they leave a real gunicorn over OTLP: seconds with boundaries made for seconds,
and one series per checkout step (``mall.step``), decoded by the in-process receiver."""

import pytest

from orders.metrics import DURATION_BUCKETS_S
from orders.tracing import CHECKOUT_STEPS
from tests.api import test_wire
from tests.api.test_wire import checkout, exporting_env, wait_for
from tests.support import shop_server

shopper = test_wire.shopper  # the fixture: a customer with a token and a filled cart


def placed_points(otlp_receiver, name: str) -> list:
    return [p for p in otlp_receiver.metric_points(name) if p.attributes.get("outcome") in {"placed", "ok"} and p.count]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_checkout_exports_duration_histograms_bucketed_for_seconds(otlp_receiver, shopper, address, tmp_path):
    env = exporting_env(otlp_receiver.grpc_endpoint, "grpc")
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        response = checkout(base_url, shopper, address)
        assert response.status_code == 201, response.text

        def both_histograms():
            steps = {p.attributes.get("mall.step") for p in placed_points(otlp_receiver, "mall.checkout.step.duration")}
            return placed_points(otlp_receiver, "mall.checkout.duration") and steps >= set(CHECKOUT_STEPS)

        wait_for(both_histograms, timeout=30, what="the checkout histograms", log_dir=tmp_path)

    for name in ("mall.checkout.duration", "mall.checkout.step.duration"):
        exported = otlp_receiver.metrics_named(name)
        assert {(m.type, m.unit) for m in exported} == {("histogram", "s")}, name
        for point in placed_points(otlp_receiver, name):
            assert point.bounds == DURATION_BUCKETS_S, name
            assert point.bounds[0] <= 0.01
            assert len(point.bucket_counts) == len(point.bounds) + 1 and sum(point.bucket_counts) == point.count
            # A checkout of milliseconds falls below 10 s: not in the overflow bucket the ms defaults made it.
            assert point.bucket_counts[-1] == 0 and 0 < point.sum < 10

    # Cumulative: every export repeats the series; one checkout is a count of 1 in each.
    checkout_points = placed_points(otlp_receiver, "mall.checkout.duration")
    assert {(p.count, frozenset(p.attributes.items())) for p in checkout_points} == {
        (1, frozenset({("outcome", "placed")}))
    }
    step_points = placed_points(otlp_receiver, "mall.checkout.step.duration")
    assert {frozenset(p.attributes.items()) for p in step_points} == {
        frozenset({"mall.step": step, "outcome": "ok"}.items()) for step in CHECKOUT_STEPS
    }
    assert all(p.count == 1 for p in step_points)  # each step once per checkout
