"""The load generator behind ``manage.py place_test_orders``: it places orders the way clients do.

Two drivers share one runner. ``InProcessShop`` calls the services the API calls, each order in a
root span ``place_test_order`` of the shop's own tracer. ``HttpShop`` is a real HTTP client (token
auth) whose client spans inject ``traceparent``, so one trace spans the load tool (its own
``service.name``, ``mall-loadgen`` by default) and the shop. Every order is planned up front from
a seeded RNG, one RNG per order, so a run does not depend on thread scheduling.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.contrib.auth import get_user_model
from django.db import connections
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from carts.selectors import cart_items
from carts.services import add_to_cart, delete_cart_item
from goods.selectors import goods_list
from mall.errors import DomainError
from mall.telemetry import build_resource, build_span_exporter, flush_telemetry, format_trace_id, new_root_context
from orders.services import create_order, pay_order

LOADGEN_SERVICE_NAME = "mall-loadgen"
ROOT_SPAN_NAME = "place_test_order"
REQUEST_TIMEOUT = 30  # seconds; a checkout queued on stock locks can take a while under load
SAMPLE_TRACES = 5
THROTTLED = "throttled"  # the code of the shop's 429 (CHECKOUT_THROTTLE_RATE)
THROTTLED_SHARE_FAILS_RUN = 0.5  # more than this share of orders throttled: the run measured the throttle
ORDER_DETAILS = {
    "address": "1 Load Test Lane, Springfield",
    "signer_name": "Load Tester",
    "signer_mobile": "+15550100",
    "note": "placed by place_test_orders",
}


class LoadSetupError(Exception):
    """The run cannot start (no users, no goods, the shop does not answer)."""


class _Refused(Exception):
    """The shop said no (a 4xx or a domain error): an outcome, not a failure of the shop."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class _Failed(Exception):
    """A 5xx: the shop failed."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class OrderPlan:
    index: int
    lines: tuple[tuple[int, int], ...]  # (goods id, units)
    pay: bool


def plan_orders(*, count: int, goods_ids: list[int], lines: int, pay_ratio: float, seed: int) -> list[OrderPlan]:
    """``count`` orders of ``lines`` distinct random goods (1-3 units each); a ``pay_ratio`` share is paid."""
    plans = []
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")
        chosen = rng.sample(goods_ids, min(lines, len(goods_ids)))
        plans.append(
            OrderPlan(
                index=index,
                lines=tuple((goods_id, rng.randint(1, 3)) for goods_id in chosen),
                pay=rng.random() < pay_ratio,
            )
        )
    return plans


@dataclass
class Shopper:
    """A demo user placing orders; one order at a time (its cart is shared by its orders)."""

    username: str
    user: object = None  # in-process: the User
    token: str = ""  # HTTP: the API token
    cart_dirty: bool = True  # lines left over (seeded, or from a refused order): emptied before the next fill


@dataclass
class OrderOutcome:
    index: int
    username: str
    trace_id: str = ""
    order_id: int | None = None  # set once the shop placed the order
    rejected: str = ""  # error code of a refusal (4xx / domain error)
    failure: str = ""  # 5xx, transport error or unexpected exception
    paid: bool = False
    pay_rejected: str = ""
    checkout_seconds: float | None = None

    @property
    def placed(self) -> bool:
        return self.order_id is not None

    @property
    def label(self) -> str:
        if self.failure:
            return f"failed: {self.failure}"
        return "placed" if self.placed else f"rejected: {self.rejected}"


def _annotate(span, outcome: OrderOutcome, exc: BaseException | None = None) -> None:
    result = "failed" if outcome.failure else "placed" if outcome.placed else "rejected"
    span.set_attribute("mall.loadgen.outcome", result)
    if outcome.order_id is not None:
        span.set_attribute("mall.order.id", outcome.order_id)
    span.set_attribute("mall.loadgen.paid", outcome.paid)
    if exc is not None:
        span.record_exception(exc)
    if outcome.failure or outcome.rejected:
        span.set_status(Status(StatusCode.ERROR, outcome.failure or outcome.rejected))


def _root_attributes(shopper: Shopper, plan: OrderPlan) -> dict:
    return {
        "user.name": shopper.username,
        "mall.loadgen.order_index": plan.index,
        "mall.loadgen.line_count": len(plan.lines),
        "mall.loadgen.pay": plan.pay,
    }


class InProcessShop:
    """Orders through the service functions the API views call, in this process."""

    mode = "in-process"
    base_url = None

    def __init__(self):
        self.tracer = trace.get_tracer("mall.loadgen")

    def shoppers(self, count: int) -> list[Shopper]:
        usernames = [f"user{n}" for n in range(1, count + 1)]
        users = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
        missing = [name for name in usernames if name not in users]
        if missing:
            raise LoadSetupError(
                f"no user {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}: "
                f"run `manage.py seed_demo --users {count}` first"
            )
        return [Shopper(username=name, user=users[name]) for name in usernames]

    def goods_in_stock(self) -> list[int]:
        return list(goods_list(on_sale=True).filter(stock__quantity__gt=0).values_list("id", flat=True))

    def place(self, shopper: Shopper, plan: OrderPlan) -> OrderOutcome:
        # A root span per order, like a client request: the checkout's spans are its descendants.
        with self.tracer.start_as_current_span(
            ROOT_SPAN_NAME, context=new_root_context(), attributes=_root_attributes(shopper, plan)
        ) as span:
            outcome = OrderOutcome(index=plan.index, username=shopper.username, trace_id=format_trace_id(span))
            error = None
            try:
                if shopper.cart_dirty:
                    for item in cart_items(user=shopper.user):
                        delete_cart_item(item=item)
                shopper.cart_dirty = True
                for goods_id, nums in plan.lines:
                    add_to_cart(user=shopper.user, goods_id=goods_id, quantity=nums)
                started = time.perf_counter()
                try:
                    result = create_order(user=shopper.user, **ORDER_DETAILS)
                finally:
                    outcome.checkout_seconds = time.perf_counter() - started
                shopper.cart_dirty = False
                outcome.order_id = result.order.pk
                if plan.pay:
                    try:
                        pay_order(order=result.order)
                        outcome.paid = True
                    except DomainError as exc:
                        outcome.pay_rejected = exc.code
            except DomainError as exc:
                outcome.rejected = exc.code
            except Exception as exc:  # a bug or the database: what a 500 is over HTTP
                outcome.failure = type(exc).__name__
                error = exc
            _annotate(span, outcome, error)
        return outcome

    def end_thread(self) -> None:
        connections.close_all()  # this thread's connections; the runner's threads end here

    def finish(self) -> None:
        flush_telemetry()


def loadgen_resource() -> Resource:
    """The load tool's resource: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, else ``mall-loadgen``."""
    return build_resource(default_service_name=LOADGEN_SERVICE_NAME)


def loadgen_tracer_provider() -> TracerProvider:
    """A tracer provider of the load tool's own, exporting like the shop does (the ``OTEL_*`` variables).

    The process-wide provider belongs to the shop (``manage.py`` sets it up as service ``mall``);
    the HTTP client is another service, so its spans get a provider with their own resource.
    """
    provider = TracerProvider(resource=loadgen_resource())
    exporter = build_span_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body["code"]
    return f"http_{response.status_code}"


def _checked(response: requests.Response, expected: int) -> dict:
    """The JSON body of an expected answer; ``_Failed`` on 5xx, ``_Refused`` on anything else."""
    if response.status_code >= 500:
        raise _Failed(f"http_{response.status_code}")
    if response.status_code != expected:
        raise _Refused(_error_code(response))
    return response.json() if response.content else {}


class HttpShop:
    """A real HTTP client of a running shop; each call a CLIENT span that injects ``traceparent``."""

    mode = "http"

    def __init__(self, *, base_url: str, password: str, tracer_provider: TracerProvider | None = None):
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LoadSetupError(f"--url must be an http(s) URL like http://127.0.0.1:8000, not {base_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._server = {"server.address": parts.hostname, "server.port": port}
        self.password = password
        self.tracer_provider = tracer_provider or loadgen_tracer_provider()
        self.tracer = self.tracer_provider.get_tracer("mall.loadgen")
        self._local = threading.local()

    # --- set-up (plain requests, no spans: only the orders are traced)
    def _setup_request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        try:
            response = self._session().request(method, url, timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise LoadSetupError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if 300 <= response.status_code < 400:
            raise LoadSetupError(
                f"{method} {url} redirects to {response.headers.get('Location')!r}: use that URL, or run the shop "
                "with DJANGO_SECURE_SSL_REDIRECT=0 for plain HTTP"
            )
        if response.status_code >= 500:
            raise LoadSetupError(f"{method} {url}: the shop answered {response.status_code}")
        return response

    def shoppers(self, count: int) -> list[Shopper]:
        shoppers = []
        for number in range(1, count + 1):
            username = f"user{number}"
            response = self._setup_request(
                "POST", "/api/auth/token/", json={"username": username, "password": self.password}
            )
            if response.status_code != 200:
                raise LoadSetupError(
                    f"cannot log in as {username} ({response.status_code}): run `manage.py seed_demo --users {count}` "
                    "on the shop's database and pass its password with --password"
                )
            shoppers.append(Shopper(username=username, token=response.json()["token"]))
        return shoppers

    def goods_in_stock(self) -> list[int]:
        goods_ids, page_url = [], "/api/goods/?on_sale=true"
        while page_url:
            response = self._setup_request("GET", page_url)
            if response.status_code != 200:
                raise LoadSetupError(f"GET {page_url}: the shop answered {response.status_code}")
            page = response.json()
            goods_ids += [goods["id"] for goods in page["results"] if goods.get("stock", 0) > 0]
            page_url = page.get("next")
        return goods_ids

    # --- orders
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _call(self, shopper: Shopper, method: str, path: str, *, route: str | None = None, json=None):
        route = route or path
        attributes = {"http.request.method": method, "url.full": self.base_url + path, "url.template": route}
        with self.tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.CLIENT, attributes={**attributes, **self._server}
        ) as span:
            headers = {"Authorization": f"Token {shopper.token}"}
            propagate.inject(headers)  # traceparent of this client span: the shop's server span is its child
            response = self._session().request(
                method, self.base_url + path, json=json, headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False
            )
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
            return response

    def _empty_cart(self, shopper: Shopper) -> None:
        for item in _checked(self._call(shopper, "GET", "/api/cart/"), 200):
            response = self._call(shopper, "DELETE", f"/api/cart/{item['id']}/", route="/api/cart/{id}/")
            if response.status_code != 404:  # already gone is fine
                _checked(response, 204)

    def place(self, shopper: Shopper, plan: OrderPlan) -> OrderOutcome:
        with self.tracer.start_as_current_span(
            ROOT_SPAN_NAME, context=Context(), attributes=_root_attributes(shopper, plan)
        ) as span:
            outcome = OrderOutcome(index=plan.index, username=shopper.username, trace_id=format_trace_id(span))
            error = None
            try:
                if shopper.cart_dirty:
                    self._empty_cart(shopper)
                shopper.cart_dirty = True
                for goods_id, nums in plan.lines:
                    _checked(self._call(shopper, "POST", "/api/cart/", json={"goods": goods_id, "nums": nums}), 201)
                started = time.perf_counter()
                try:
                    response = self._call(shopper, "POST", "/api/orders/", json=ORDER_DETAILS)
                finally:
                    outcome.checkout_seconds = time.perf_counter() - started
                order = _checked(response, 201)
                shopper.cart_dirty = False
                outcome.order_id = order["id"]
                if plan.pay:
                    path = f"/api/orders/{order['id']}/pay/"
                    try:
                        _checked(self._call(shopper, "POST", path, route="/api/orders/{id}/pay/"), 200)
                        outcome.paid = True
                    except _Refused as exc:
                        outcome.pay_rejected = exc.code
            except _Refused as exc:
                outcome.rejected = exc.code
            except _Failed as exc:
                outcome.failure = exc.kind
            except requests.RequestException as exc:
                outcome.failure = f"transport_error ({type(exc).__name__})"
                error = exc
            _annotate(span, outcome, error)
        return outcome

    def end_thread(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def finish(self) -> None:
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()


def run_orders(
    *,
    shop,
    shoppers: list[Shopper],
    plans: list[OrderPlan],
    concurrency: int,
    on_outcome: Callable[[OrderOutcome], None] = lambda outcome: None,
) -> tuple[list[OrderOutcome], float]:
    """Place the planned orders on ``concurrency`` threads; returns the outcomes (by index) and the seconds taken.

    A shopper places one order at a time: a thread takes an idle shopper for each order, so two
    orders never share a cart. Fewer shoppers than threads caps the orders in flight.
    """
    pending: queue.SimpleQueue[OrderPlan] = queue.SimpleQueue()
    for plan in plans:
        pending.put(plan)
    idle: queue.Queue[Shopper] = queue.Queue()
    for shopper in shoppers:
        idle.put(shopper)
    outcomes: list[OrderOutcome] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                try:
                    plan = pending.get_nowait()
                except queue.Empty:
                    return
                shopper = idle.get()
                try:
                    outcome = shop.place(shopper, plan)
                except Exception as exc:  # a bug of the driver must not lose the order's outcome
                    outcome = OrderOutcome(index=plan.index, username=shopper.username, failure=type(exc).__name__)
                finally:
                    idle.put(shopper)
                with lock:
                    outcomes.append(outcome)
                on_outcome(outcome)
        finally:
            shop.end_thread()

    threads = [threading.Thread(target=work, name=f"loadgen-{n}") for n in range(max(1, min(concurrency, len(plans))))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sorted(outcomes, key=lambda outcome: outcome.index), elapsed


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``share`` in 0..1)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def _sample(outcomes: list[OrderOutcome]) -> list[OrderOutcome]:
    """Failures first, then placed orders, then refusals (throttled last): the traces worth opening."""
    ranked = sorted(
        (outcome for outcome in outcomes if outcome.trace_id),
        key=lambda outcome: (
            not outcome.failure,
            bool(outcome.rejected),
            outcome.rejected == THROTTLED,
            outcome.index,
        ),
    )
    return ranked[:SAMPLE_TRACES]


@dataclass
class LoadSummary:
    mode: str
    url: str | None
    seed: int
    outcomes: list[OrderOutcome]
    elapsed: float
    trace_url: Callable[[str], str | None]  # where a trace opens; None: nowhere (no link is printed)
    figures: dict = field(init=False)

    def __post_init__(self):
        outcomes = self.outcomes
        latencies_ms = sorted(o.checkout_seconds * 1000 for o in outcomes if o.checkout_seconds is not None)
        placed = sum(o.placed for o in outcomes)
        self.figures = {
            "mode": self.mode,
            "url": self.url,
            "seed": self.seed,
            "orders": len(outcomes),
            "placed": placed,
            "rejected": dict(Counter(o.rejected for o in outcomes if o.rejected and not o.failure).most_common()),
            "failed": sum(bool(o.failure) for o in outcomes),
            "failures": dict(Counter(o.failure for o in outcomes if o.failure).most_common()),
            "paid": sum(o.paid for o in outcomes),
            "pay_rejected": dict(Counter(o.pay_rejected for o in outcomes if o.pay_rejected).most_common()),
            "latency_ms": {
                name: None if value is None else round(value, 1)
                for name, value in (
                    ("p50", percentile(latencies_ms, 0.50)),
                    ("p95", percentile(latencies_ms, 0.95)),
                    ("p99", percentile(latencies_ms, 0.99)),
                )
            },
            "elapsed_s": round(self.elapsed, 3),
            "orders_per_s": round(placed / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "sample_traces": [
                {"trace_id": o.trace_id, "outcome": o.label, "url": self.trace_url(o.trace_id)}
                for o in _sample(outcomes)
            ],
        }

    @property
    def failed(self) -> int:
        return self.figures["failed"]

    @property
    def throttled(self) -> int:
        return self.figures["rejected"].get(THROTTLED, 0)

    @property
    def mostly_throttled(self) -> bool:
        """More than half of the orders were throttled: the figures describe the throttle, not the shop."""
        return self.throttled > THROTTLED_SHARE_FAILS_RUN * self.figures["orders"]
