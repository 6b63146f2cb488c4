"""What the browser tests share: Debian's Chromium for Playwright, where screenshots go, and the admin log-in.
Its fixtures (``browser``, ``page``, ``production_password_hashing``, ``shop_url``) are in tests/e2e/conftest.py."""

from playwright.sync_api import Page, expect

from tests.factories import TEST_PASSWORD
from tests.support import REPO

SCREENSHOTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as artifacts/browser/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_into_admin(page: Page, shop_url: str, user) -> None:
    """Log ``user`` (password TEST_PASSWORD) into the admin and wait for its index."""
    page.goto(f"{shop_url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#content h1")).to_have_text("Site administration")
