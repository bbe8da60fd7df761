"""wp-admin in Debian's Chromium: a person logged in through wp-login.php, a page watched for
console errors, uncaught exceptions and requests to other origins (tests/browser.py), and the
plugin's own part of a screen checked with axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from browser import (
    DEFAULT_TIMEOUT_MS,
    PageWatch,
    artifacts_on_failure,
    axe_violations,
    describe_violations,
    submit_wp_login,
)
from playwright.async_api import Browser, Page, Route

from .wp_harness import WordPressSite

WIDTHS = (1280, 375)


async def log_in(page: Page, site: WordPressSite, login: str, password: str) -> None:
    """Logs in with wp-login.php's form, as a person would."""
    await submit_wp_login(page, site.url + "/wp-login.php", login, password)
    assert "wp-login.php" not in page.url, f"{login} was not logged in: {page.url}"


@asynccontextmanager
async def logged_in(
    browser: Browser,
    site: WordPressSite,
    login: str,
    password: str,
    name: str,
    allow_console: tuple[str, ...] = (),
    width: int = 1280,
    widget: bool = True,
) -> AsyncIterator[tuple[Page, PageWatch]]:
    """A fresh browser context with `login` signed in; on leaving, the page must have been clean
    (no console error, no exception, nothing fetched from another origin). Screenshots at 1280
    and 375 px go to test-artifacts/ when the block fails. With `widget=False` the portal
    widget's files are answered empty (see `without_widget`)."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = await context.new_page()
    if not widget:
        await without_widget(page)
    watch = await PageWatch.attach(page, origins=[site.url], allow_console=allow_console)
    try:
        async with artifacts_on_failure(page, name):
            await log_in(page, site, login, password)
            yield page, watch
            await watch.assert_clean()
    finally:
        await context.close()


async def without_widget(page: Page) -> None:
    """The portal widget's files are answered empty: what is then on the page is the plugin's
    server-rendered part (the widget's own tests, tests/widget/, cover the widget)."""

    async def empty(route: Route) -> None:
        kind = "text/css" if route.request.url.split("?")[0].endswith(".css") else "text/javascript"
        await route.fulfill(status=200, content_type=kind, body="")

    await page.route("**/wp-content/plugins/firm-bridge/widget/dist/**", empty)


async def assert_accessible(page: Page, include: str | None = None, **kwargs: Any) -> None:
    """No serious or critical axe-core violation in `include` (the plugin's part of the page)."""
    found = await axe_violations(page, include=include, **kwargs)
    assert not found, f"{page.url}:\n  " + describe_violations(found)
