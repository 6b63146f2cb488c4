"""Fixtures of the browser tests (Playwright + Debian's Chromium, headless, against a real gunicorn)."""

import secrets

import pytest
from django.conf import global_settings
from playwright.sync_api import sync_playwright

from tests.e2e.browsing import CHROMIUM, CHROMIUM_ARGS
from tests.support import shop_env, shop_server


@pytest.fixture
def production_password_hashing(settings):
    """Users made here log into the server, which only knows the production hashers (not the suite's MD5)."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture
def shop_url(tmp_path):
    """gunicorn with production settings (a real secret key, so DEBUG is off) on the test database."""
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), JAEGER_UI_URL="http://jaeger.example:16686")
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an asyncio loop in this thread; Django would take the test's own
    # (synchronous) database calls for calls from async code and refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, production_password_hashing):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()
