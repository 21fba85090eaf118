"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Never a downloaded browser. Locally the suite skips when chromium is missing;
under CI=true it fails instead, so CI cannot go green without running it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHORUS_TEST_CHROMIUM", "/usr/bin/chromium"))
# Flags for a root user on a machine with no network beyond loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


# Module scope, not session: Playwright's sync API keeps an event loop running in
# this thread while it lives, and the asyncio tests after this folder need none.
@pytest.fixture(scope="module")
def browser(request):
    """Chromium for one test module; a module may add flags with EXTRA_CHROMIUM_ARGS."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=[*CHROMIUM_ARGS, *getattr(request.module, "EXTRA_CHROMIUM_ARGS", ())])
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, stack):
    """A page in its own browser context (its own cookies and storage: another person)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=stack.base_url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page
    yield make
    for context in contexts:
        context.close()
