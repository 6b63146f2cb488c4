"""MALL_TRACEPARENT over the wire, against a real gunicorn with the README's production sampling
(parentbased_traceidratio 0.1): ``link`` keeps a sampled caller header at the shop's own ratio under the
shop's own trace ids; ``trust`` continues the caller's trace."""

import pytest
import requests

from harness import processes as server
from tests.domain.test_propagation import CALLER_TRACE_ID, TRACERESPONSE, traceparent
from tests.support import shop_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REQUESTS = 200
SAMPLED = 0x01


def answers(base_url: str, count: int) -> list[tuple[str, bool]]:
    """(trace id, sampled) of the traceresponse of ``count`` requests sent with a sampled caller header."""
    seen = []
    with requests.Session() as session:
        for _ in range(count):
            response = session.get(f"{base_url}/api/", headers={"traceparent": traceparent()}, timeout=10)
            assert response.status_code == 200
            fields = TRACERESPONSE.match(response.headers["traceresponse"]).groupdict()
            seen.append((fields["trace_id"], bool(int(fields["flags"], 16) & SAMPLED)))
    return seen


@pytest.mark.parametrize("mode", ["link", "trust"])
def test_the_edge_decides_what_an_incoming_traceparent_may_do(tmp_path, mode):
    env = shop_env(MALL_TRACEPARENT=mode, OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.1")
    with server.gunicorn(env=env, workers=1, threads=1, log_path=tmp_path / "gunicorn.log") as (base_url, _):
        seen = answers(base_url, REQUESTS)

    sampled = sum(flag for _, flag in seen)
    if mode == "link":
        assert CALLER_TRACE_ID not in {trace_id for trace_id, _ in seen}
        assert len({trace_id for trace_id, _ in seen}) == REQUESTS  # a new trace per request
        assert 0.02 * REQUESTS <= sampled <= 0.25 * REQUESTS, sampled  # about 10 %, never the caller's 100 %
    else:
        assert {trace_id for trace_id, _ in seen} == {CALLER_TRACE_ID}
        assert sampled == REQUESTS
