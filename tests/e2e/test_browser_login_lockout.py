"""A locked-out log-in in Chromium at 1280 px: the admin's and the browsable API's log-in forms each answer
with a styled page (their own look, status 429, Retry-After) saying when to try again, and so do too many
attempts from one address. Screenshots go to artifacts/browser/.
"""

import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browsing import screenshot
from tests.factories import TEST_PASSWORD
from tests.support import shop_env, shop_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]

LIMIT = 10  # the default MALL_LOGIN_FAILURE_LIMIT
VIEWPORT_WIDTH = 1280


def fail_until_locked(page: Page, login_url: str, username: str, *, submit: str):
    """Fail the form LIMIT times ("wrong password" each time), then log in right; return the refusal."""
    for n in range(LIMIT):
        page.goto(login_url)
        page.fill("#id_username", username)
        page.fill("#id_password", f"guess-{n}")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click(submit)
        assert answer.value.status == 200, n  # the form again, with its error
    page.goto(login_url)
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click(submit)
    return answer.value


def assert_on_screen_without_scrolling(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT_WIDTH


def test_a_locked_out_admin_log_in_gets_the_admins_styled_page(page, shop_url, staff_user):
    locked = fail_until_locked(
        page, f"{shop_url}/admin/login/?next=/admin/", staff_user.username, submit="input[type=submit]"
    )

    assert locked.status == 429
    assert locked.headers["retry-after"] == "900"
    expect(page.locator("#site-name")).to_have_text("mall admin")
    expect(page.locator("#content h1")).to_have_text("Log-in locked")
    expect(page.locator(".retry")).to_contain_text("Try again in 15 minutes, after")
    background = page.eval_on_selector("#header", "el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")  # the admin's stylesheet applied
    assert_on_screen_without_scrolling(page)
    screenshot(page, "admin-login-locked-1280")
    page.click("text=Back to the log-in form")
    expect(page.locator("#id_username")).to_be_visible()


def test_a_locked_out_browsable_api_log_in_gets_the_apis_styled_page(page, shop_url, user):
    locked = fail_until_locked(page, f"{shop_url}/api/auth/login/", user.username, submit="#submit-id-submit")

    assert locked.status == 429
    assert locked.headers["retry-after"] == "900"
    expect(page.locator(".alert-danger")).to_contain_text("Log-in locked")
    expect(page.locator("#retry")).to_contain_text("Try again in 15 minutes, after")
    well = page.eval_on_selector(".well", "el => getComputedStyle(el).backgroundColor")
    assert well not in ("rgba(0, 0, 0, 0)", "transparent")  # bootstrap applied
    assert_on_screen_without_scrolling(page)
    screenshot(page, "api-login-locked-1280")


@pytest.fixture
def throttled_shop_url(tmp_path):
    """The production-settings gunicorn of test_browser.py, allowing 3 log-in attempts a minute per address."""
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), MALL_LOGIN_THROTTLE_RATE="3/minute")
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url


def attempt(page: Page, login_url: str, submit: str, n: int):
    page.goto(login_url)
    page.fill("#id_username", f"nobody-{n}")
    page.fill("#id_password", "guess")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click(submit)
    return answer.value


def test_too_many_attempts_from_one_address_get_the_forms_styled_page(page, throttled_shop_url):
    admin_login = f"{throttled_shop_url}/admin/login/?next=/admin/"
    assert [attempt(page, admin_login, "input[type=submit]", n).status for n in range(3)] == [200] * 3

    throttled = attempt(page, admin_login, "input[type=submit]", 3)

    assert throttled.status == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 60
    expect(page.locator("#content h1")).to_have_text("Too many log-in attempts")
    expect(page.locator(".retry")).to_contain_text("Try again in")
    assert_on_screen_without_scrolling(page)
    screenshot(page, "admin-login-throttled-1280")

    throttled = attempt(page, f"{throttled_shop_url}/api/auth/login/", "#submit-id-submit", 4)  # the same count

    assert throttled.status == 429
    expect(page.locator(".alert-danger")).to_contain_text("Too many log-in attempts")
    screenshot(page, "api-login-throttled-1280")
