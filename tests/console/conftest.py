"""The browser the page tests share: Chromium (skipped loudly, or failing under CI, when it is absent), one per
test module, and the contexts a test opens, closed after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.conftest import require_program
from tests.console.browser import CHROMIUM, LAUNCH_ARGS


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_program(CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()
