"""Playwright driving Debian's Chromium against the live test server.

Screenshots of the pages a test visits go to test-artifacts/screenshots/
(git-ignored), so anyone can look at them after `make test`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: the tests may run as root in a container. The rest keeps
# Chromium from calling home: the tests may only talk to the live server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser(live_server, monkeypatch) -> Browser:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)"
    # Playwright's sync API keeps an event loop running in this thread, and
    # Django refuses ORM calls from such a thread unless told it is safe.
    # It is: the loop only waits for Chromium (the tests call the ORM directly
    # for checks, and the live server runs in its own thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # While Playwright's event loop runs, Django keys database connections
        # by context rather than by thread, so ORM calls made meanwhile (the
        # fixtures and checks of the test) opened connections of their own.
        # Close them here, in that context; left open, PostgreSQL refuses to
        # drop the test database at the end of the run.
        connections.close_all()


@pytest.fixture
def open_page(browser, live_server):
    """open_page(viewport=LAPTOP) -> a Page in a fresh context (its own cookies),
    with relative URLs resolved against the live server. Uncaught JavaScript
    errors fail the test when it ends."""
    errors: list[str] = []
    contexts = []

    def open_(viewport: dict = LAPTOP) -> Page:
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], "JavaScript errors on the pages"


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot under test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def path_of(page: Page) -> str:
    """The current URL's path and query, without the live server's origin."""
    return re.sub(r"^https?://[^/]+", "", page.url)
