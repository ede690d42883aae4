"""Playwright driving Debian's Chromium against the live test server.

Screenshots of the pages a test visits go to test-artifacts/screenshots/
(git-ignored), so anyone can look at them after `make test`.

Every page a test opens is watched for Content-Security-Policy violations
(docs/csp.md): one fails the test. `assert_accessible(page)` runs axe-core
(tests/browser/package.json, installed by `make browser-deps`) on the page.
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
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# Init scripts run outside the page's Content-Security-Policy; this one turns every
# violation the page reports into a console error that the fixture collects.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`
    + ` in ${event.sourceFile || document.location.pathname}:${event.lineNumber}`);
});
"""
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
    errors and Content-Security-Policy violations fail the test when it ends."""
    errors: list[str] = []
    violations: list[str] = []
    contexts = []

    def watch_console(page: Page, message) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or text.startswith("CSP violation")):
            violations.append(f"{page.url}: {text}")

    def open_(viewport: dict = LAPTOP) -> Page:
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        context.set_default_timeout(10_000)
        context.add_init_script(CSP_WATCH)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: watch_console(page, message))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], "JavaScript errors on the pages"
    assert violations == [], "Content-Security-Policy violations on the pages"


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot under test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def path_of(page: Page) -> str:
    """The current URL's path and query, without the live server's origin."""
    return re.sub(r"^https?://[^/]+", "", page.url)


def axe_violations(page: Page) -> list[str]:
    """axe-core's violations of every impact on the page as it is now, one line each.

    Evaluated through the DevTools protocol, which the page's Content-Security-Policy
    does not govern (a <script> tag with axe's source would be refused)."""
    assert AXE.exists(), f"{AXE} is missing: run `make browser-deps` (npm ci in tests/browser)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    lines = []
    for violation in result["violations"]:
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:4])
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return lines


def assert_accessible(page: Page) -> None:
    """No axe-core violation of any impact on the page (issue 14, item 10)."""
    violations = axe_violations(page)
    assert violations == [], f"{path_of(page)} ({page.viewport_size['width']} px):\n" + "\n".join(violations)


def open_account_menu(page: Page) -> None:
    """Unfold the header's account menu (its links and Sign out), where it is folded away."""
    menu = page.locator("details.account-menu")
    if menu.count() and menu.get_attribute("open") is None:
        site_menu = page.locator("details.site-menu")
        if not menu.locator("summary").is_visible() and site_menu.get_attribute("open") is None:
            site_menu.locator("summary").click()
        menu.locator("summary").click()
