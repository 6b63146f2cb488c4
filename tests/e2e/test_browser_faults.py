"""The fault banner at 1280 px in Chromium: every admin page says which faults are in force, in red."""

import secrets

import pytest
from playwright.sync_api import expect

from faults.services import clear_faults, set_fault
from tests.e2e.browsing import log_into_admin, screenshot
from tests.support import shop_env, shop_server, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]


@pytest.fixture
def shop_url(tmp_path, settings):
    """gunicorn with DEBUG off and fault injection allowed, on the test database."""
    settings.MALL_ALLOW_FAULT_INJECTION = True  # this process writes the rules
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), MALL_ALLOW_FAULT_INJECTION="1")
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url


def test_every_admin_page_shows_the_faults_in_force(page, shop_url, staff_user):
    set_fault(step="query_inv", kind="hold", milliseconds=300)
    set_fault(step="save_order", kind="error", rate=10)
    log_into_admin(page, shop_url, staff_user)

    banner = page.locator("#fault-banner")
    expect(banner).to_contain_text("query_inv: hold 300 ms")
    expect(banner).to_contain_text("save_order: error at 10%")
    assert banner.bounding_box()["width"] <= 1280
    page.goto(f"{shop_url}/admin/faults/faultrule/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#fault-banner")).to_be_visible()
    screenshot(page, "admin-fault-banner-1280")

    clear_faults()

    def banner_gone():  # the server's worker reads the rules again within a second
        page.goto(f"{shop_url}/admin/orders/order/")
        return page.locator("#fault-banner").count() == 0

    wait_until(banner_gone, timeout=3, what="the banner to go")
