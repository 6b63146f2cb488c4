"""A real HTTP client of a running shop (token auth): each call a CLIENT span that injects ``traceparent``.

One trace spans the load tool (its own ``service.name``, ``mall-loadgen`` by default) and the shop.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests
from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from mall.telemetry import build_resource, build_span_exporter, span_processor_of_another_service
from perf.loadgen.plan import Shopper
from perf.loadgen.shop import ORDER_DETAILS, Failed, LoadSetupError, Refused, Shop

LOADGEN_SERVICE_NAME = "mall-loadgen"
REQUEST_TIMEOUT = 30  # seconds; a checkout queued on stock locks can take a while under load


def loadgen_resource() -> Resource:
    """The load tool's resource: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, else ``mall-loadgen``."""
    return build_resource(default_service_name=LOADGEN_SERVICE_NAME)


def loadgen_tracer_provider() -> TracerProvider:
    """A tracer provider of the load tool's own, exporting like the shop does (the ``OTEL_*`` variables), and
    writing to the built-in trace store when it is on (run through ``manage.py`` on the shop's database, the
    client's ``place_test_order`` root then stands over the shop's server spans in ``/admin/traces/<id>/``).

    The process-wide provider belongs to the shop (``manage.py`` sets it up as service ``mall``);
    the HTTP client is another service, so its spans get a provider with their own resource.
    """
    provider = TracerProvider(resource=loadgen_resource())
    provider.add_span_processor(span_processor_of_another_service(build_span_exporter()))
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
    """The JSON body of an expected answer; ``Failed`` on 5xx, ``Refused`` on anything else."""
    if response.status_code >= 500:
        raise Failed(f"http_{response.status_code}")
    if response.status_code != expected:
        raise Refused(_error_code(response))
    return response.json() if response.content else {}


class HttpShop(Shop):
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
        try:
            with self.tracer.start_as_current_span(
                f"{method} {route}", kind=SpanKind.CLIENT, attributes={**attributes, **self._server}
            ) as span:
                headers = {"Authorization": f"Token {shopper.token}"}
                propagate.inject(headers)  # traceparent of this client span: the shop's server span is its child
                response = self._session().request(
                    method, self.base_url + path, json=json, headers=headers, timeout=REQUEST_TIMEOUT,
                    allow_redirects=False,
                )  # fmt: skip
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 400:
                    span.set_attribute("error.type", str(response.status_code))
                    span.set_status(Status(StatusCode.ERROR))
                return response
        except requests.RequestException as exc:  # recorded on the client span as it left it
            raise Failed(f"transport_error ({type(exc).__name__})", cause=exc) from exc

    def empty_cart(self, shopper: Shopper) -> None:
        for item in _checked(self._call(shopper, "GET", "/api/cart/"), 200):
            response = self._call(shopper, "DELETE", f"/api/cart/{item['id']}/", route="/api/cart/{id}/")
            if response.status_code != 404:  # already gone is fine
                _checked(response, 204)

    def add_to_cart(self, shopper: Shopper, goods_id: int, nums: int) -> None:
        _checked(self._call(shopper, "POST", "/api/cart/", json={"goods": goods_id, "nums": nums}), 201)

    def check_out(self, shopper: Shopper) -> tuple[int, object]:
        order = _checked(self._call(shopper, "POST", "/api/orders/", json=ORDER_DETAILS), 201)
        return order["id"], order["id"]

    def pay(self, shopper: Shopper, order: object) -> None:
        path = f"/api/orders/{order}/pay/"
        _checked(self._call(shopper, "POST", path, route="/api/orders/{id}/pay/"), 200)

    def end_thread(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def finish(self) -> None:
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
