"""Fixtures that read like the shop: users, goods in stock, carts, an API client, captured spans."""

import os
from decimal import Decimal

import pytest
from django.db import connection
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.test import APIClient

from tests.factories import ADDRESS, GoodsFactory, UserFactory

TIERS = ("domain", "api", "concurrency", "e2e", "tooling")  # the folders of tests/, one marker each

pytest_plugins = ["tests.otlp_receiver"]  # the otlp_receiver fixture, registered before any test module imports it

_span_exporter = InMemorySpanExporter()
_metric_reader = InMemoryMetricReader()


def pytest_configure(config):
    from django.conf import settings

    from mall.telemetry import configure_telemetry

    # Hashing is not under test here; PBKDF2's deliberate slowness would dominate the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    # The real set-up (Django + DB-API instrumentation), plus in-memory readers for assertions. No trace
    # store, here or in the shop processes tests start (unless a test turns it on): its writes from a
    # background thread would queue behind each test's open transaction on SQLite.
    os.environ.setdefault("MALL_TRACE_STORE", "off")
    configure_telemetry(metric_readers=[_metric_reader], trace_store=False)
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(_span_exporter))


def pytest_collection_modifyitems(config, items):
    """Mark each test with its tier, the folder it lives in (``tests/<tier>/``)."""
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(tier)


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(request):
    """Throttle counts live in the shared "throttle" cache (a table) keyed by user id, which tests reuse.

    Cleared for the tests that use the database (the others cannot reach the table, nor check out).
    """
    from django.core.cache import caches

    caches["default"].clear()
    if "_django_db_helper" in request.fixturenames:  # what db, transactional_db and the django_db mark use
        request.getfixturevalue("_django_db_helper")
        caches["throttle"].clear()


@pytest.fixture(autouse=True)
def _fresh_timeout_buckets():
    """The checkout remembers which deadline buckets it saw scheduled; test databases do not keep them."""
    from orders.expiry import forget_scheduled_buckets

    forget_scheduled_buckets()


@pytest.fixture(autouse=True)
def _fresh_fault_rules():
    """Each process caches the fault rules for a second; a test's rules roll back with its database."""
    from faults.selectors import forget_cached_rules

    forget_cached_rules()
    yield
    forget_cached_rules()


@pytest.fixture
def spans():
    """The spans finished during the test (in-memory exporter)."""
    _span_exporter.clear()
    yield _span_exporter
    _span_exporter.clear()


@pytest.fixture
def metric_reader():
    return _metric_reader


@pytest.fixture
def on_mariadb():
    return connection.vendor == "mysql"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def client_for():
    """An API client authenticated with the user's token (the header real clients send)."""

    def make(user):
        from rest_framework.authtoken.models import Token

        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def api(client_for, user):
    return client_for(user)


@pytest.fixture
def goods_in_stock(db):
    """Goods on sale with a stock row (ledgered through the inventory service)."""

    def make(*, price="10.00", stock=100, **fields):
        return GoodsFactory(price=Decimal(price), stock_quantity=stock, **fields)

    return make


@pytest.fixture
def address():
    return dict(ADDRESS)
