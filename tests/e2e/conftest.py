"""Fixtures shared by the browser tests: skipping when headless Chromium is unavailable."""

from __future__ import annotations

import pytest

from tests.support.browser import browser_unavailable


@pytest.fixture(scope="module")
def browser_ready() -> None:
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"headless browser not available: {reason}")
