"""The instrumentation diet: a checkout whose trace is not sampled starts no span below its server span."""

import pytest

from mall.telemetry import DropOrphanDbSpans
from orders.tracing import CHECKOUT_STEPS
from tests.domain.test_propagation import CALLER_TRACE_ID, traceparent
from tests.factories import fill_cart


@pytest.fixture
def sampler_calls(monkeypatch):
    """Names of the spans the (real) sampler is asked about."""
    asked = []
    should_sample = DropOrphanDbSpans.should_sample

    def counting(self, parent_context, trace_id, name, *args, **kwargs):
        asked.append(name)
        return should_sample(self, parent_context, trace_id, name, *args, **kwargs)

    monkeypatch.setattr(DropOrphanDbSpans, "should_sample", counting)
    return asked


@pytest.fixture
def checkout(api, user, goods_in_stock, address):
    """A checkout of one line called by a client whose trace is sampled or not."""

    def check_out(*, sampled: bool):
        fill_cart(user, (goods_in_stock(), 1))
        response = api.post("/api/orders/", address, format="json", HTTP_TRACEPARENT=traceparent(sampled=sampled))
        assert response.status_code == 201, response.content
        return response

    return check_out


@pytest.mark.django_db
def test_an_unsampled_checkout_asks_the_sampler_about_its_server_span_only(checkout, spans, sampler_calls):
    response = checkout(sampled=False)

    assert response.data["trace_id"] == CALLER_TRACE_ID  # the caller's trace, though nothing of it is kept
    assert sampler_calls == ["POST api/orders/"]
    assert spans.get_finished_spans() == ()


@pytest.mark.django_db
def test_a_sampled_checkout_still_records_every_step_and_statement(checkout, spans, sampler_calls):
    checkout(sampled=True)

    finished = spans.get_finished_spans()
    names = [span.name for span in finished]
    assert {"create_order", *CHECKOUT_STEPS} <= set(names)
    steps = {span.context.span_id for span in finished if span.name in CHECKOUT_STEPS}
    statements = [span for span in finished if span.name.upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}]
    # Token auth's SELECT and the throttle's count (the shared cache's table) are the request's, not a step's.
    statements = [span for span in statements if "mall_throttle_cache" not in span.attributes.get("db.statement", "")]
    writes = [span for span in statements if span.name != "SELECT"]
    assert writes and all(span.parent.span_id in steps for span in writes)
    assert any(span.parent.span_id in steps for span in statements if span.name == "SELECT")
    assert len(sampler_calls) == len(finished)  # every span recorded was decided once; none skipped
