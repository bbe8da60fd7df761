"""Reading in the portal widget counts as reading for the e-mail notices (issue 13): a client
with the matter's room open in the widget, in Debian's Chromium, gets no e-mail for what the
attorney writes meanwhile (the widget's read receipt reaches the homeserver before the delay);
once the page is closed, the next message is e-mailed, so the silence before is the receipt's
doing. With the real WordPress sending through a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import Homeserver
from playwright.async_api import Browser, expect
from wp.conftest import _wp_firm
from wp.test_wp_notify import DELAY, Mailbox, chat_page, eventually, mailbox, notice_overrides
from wp.wp_harness import WordPressSite

from .conftest import assert_clean, keep_recovery_key, matter_portal

__all__ = ["mailbox"]  # the fixture, imported for pytest


async def test_reading_in_the_widget_sends_no_notice(
    wp_site: WordPressSite,
    homeserver: Homeserver,
    tmp_path: Path,
    mailbox: Mailbox,  # noqa: F811 - the imported fixture
    chromium_browser: Browser,
) -> None:
    db = f"sqlite:{tmp_path / 'bridge.db'}"
    async with (
        _wp_firm(wp_site, homeserver, db, tmp_path, **notice_overrides(wp_site)) as firm,
        matter_portal(firm) as portal,
    ):
        await chat_page(firm)
        address = f"{portal.client_login}@example.com"
        context = await chromium_browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page, watch = await portal.open(context)
            await keep_recovery_key(page)
            room = page.get_by_role("button", name=portal.label)
            await expect(room).to_have_attribute("aria-current", "true")
            # The room is open and the page visible: the attorney writes, the client sees it.
            for text in ("first", "second"):
                await portal.attorney.send_text(portal.room_id, f"{text} {firm.tag}")
            await expect(page.locator(".fc-timeline")).to_contain_text(f"second {firm.tag}")
            await asyncio.sleep(DELAY + 4)  # the delay has passed, and its check
            assert not mailbox.to(address), [str(m["Subject"]) for m in mailbox.messages]
            await assert_clean(watch)
        finally:
            await context.close()

        # The page closed: the next message waits unread, and is e-mailed.
        await portal.attorney.send_text(portal.room_id, f"third {firm.tag}")

        async def one() -> bool:
            return len(mailbox.to(address)) == 1

        await eventually(one, DELAY + 30, "the notice once nobody reads")
