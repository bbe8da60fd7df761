"""A conversation in the widget: replies, edits and deletions of one's own messages, "seen",
typing, unread counts per room and for the page's menu, and scrolling back through history."""

from __future__ import annotations

import asyncio

from browser import artifacts_on_failure
from mautrix.types import EventID, RoomID
from playwright.async_api import Browser, expect

from .conftest import Portal, assert_clean, keep_recovery_key


async def wait_message(portal: Portal, body: str, timeout: float = 30) -> dict:
    for _ in range(int(timeout * 10)):
        for m in portal.attorney.messages:
            if m.body == body and m.content:
                return {"event_id": m.event_id, **m.content}
        await asyncio.sleep(0.1)
    seen = [m.body for m in portal.attorney.messages][-5:]
    raise AssertionError(f"{body!r} did not reach the attorney (last: {seen})")


async def test_conversation(portal: Portal, chromium_browser: Browser) -> None:
    wp, attorney, room = portal.wp, portal.attorney, portal.room_id
    # A second matter, so that one room is not open while the other gets messages.
    second = await wp.site.create_matter(
        "Second matter",
        wp.number(2),
        firm_matter_clients=[portal.client_wp],
        firm_matter_responsible_partner=portal.partner_wp,
    )
    room2 = (await wp.wait_bridge("matter", second))["room_id"]
    # The page's menu shows the count where the theme puts an element for it.
    status, data = await wp.site.rest(
        "POST",
        "/wp/v2/pages",
        {
            "title": f"Menu {wp.tag}",
            "content": '<p>Messages <span class="firm-chat-unread"></span></p>[firm_chat]',
            "status": "publish",
        },
    )
    assert status == 201, data
    portal.page_url = data["link"]

    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        async with artifacts_on_failure(page, "widget-conversation"):
            await keep_recovery_key(page)
            first = page.get_by_role("button", name=portal.label)
            await expect(first).to_be_visible()
            await first.click()
            timeline = page.locator(".fc-timeline")

            # History to scroll back through (read by this device as it comes).
            for i in range(45):
                await attorney.send_text(room, f"history {i:02d}")
            await expect(timeline).to_contain_text("history 44")

            # Unread: messages in the room not open count, per room and in total (also told to
            # the page as a `firm-chat:unread` event).
            await page.evaluate(
                "window.__unread = [];"
                " addEventListener('firm-chat:unread', (e) => __unread.push(e.detail.total))"
            )
            for i in range(3):
                await attorney.send_text(room2, f"unread {i}")
            other = page.locator(".fc-room-button", has_text=wp.number(2))
            await expect(other.locator(".fc-badge")).to_have_text("3")
            await expect(page.locator(".firm-chat-unread")).to_have_text("3")
            assert await page.locator(".firm-chat").get_attribute("data-unread") is None
            assert await page.locator(".fc").get_attribute("data-unread") == "3"
            await other.click()
            await expect(other.locator(".fc-badge")).to_have_count(0)
            await expect(page.locator(".firm-chat-unread")).to_be_hidden()
            told = await page.evaluate("__unread")
            assert 3 in told and told[-1] == 0, told
            await first.click()

            # A reply to the attorney's message carries the relation.
            target = page.locator(".fc-msg", has_text="history 44")
            await target.get_by_role("button", name="Reply").click()
            await expect(page.locator(".fc-context")).to_contain_text("Replying to")
            await page.get_by_label("Message").fill("my reply")
            await page.get_by_role("button", name="Send").click()
            reply = await wait_message(portal, "my reply")
            history_44 = await wait_message(portal, "history 44")
            assert reply["m.relates_to"]["m.in_reply_to"]["event_id"] == history_44["event_id"]
            mine = page.locator(".fc-msg", has_text="my reply")
            await expect(mine.locator(".fc-quote")).to_contain_text("history 44")

            # Seen: the attorney's read receipt shows on the client's last message.
            await attorney.client.send_receipt(RoomID(room), EventID(reply["event_id"]))
            await expect(mine.locator(".fc-state")).to_contain_text("Seen by Pam")

            # Typing.
            await attorney.client.set_typing(RoomID(room), timeout=10_000)
            await expect(page.locator(".fc-typing")).to_contain_text("Pam is typing")
            await attorney.client.set_typing(RoomID(room), timeout=0)
            await expect(page.locator(".fc-typing")).to_have_text("")

            # Editing one's own message.
            await mine.get_by_role("button", name="Edit").click()
            await page.get_by_label("Message").fill("my reply, corrected")
            await page.get_by_role("button", name="Send").click()
            # (mautrix shows an edit's new text as its body)
            edit = await wait_message(portal, "my reply, corrected")
            assert edit["m.new_content"]["body"] == "my reply, corrected"
            assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": reply["event_id"]}
            await expect(mine).to_contain_text("my reply, corrected")
            await expect(mine.locator(".fc-edited")).to_be_visible()
            # Only one's own messages can be edited or deleted.
            theirs = page.locator(".fc-msg", has_text="history 43")
            assert await theirs.get_by_role("button", name="Edit").count() == 0
            assert await theirs.get_by_role("button", name="Delete").count() == 0

            # Deleting it, for everyone.
            await mine.get_by_role("button", name="Delete").click()
            await expect(page.locator(".fc-deleted")).to_have_text("Message deleted")
            status, event = await wp.hs.as_request(
                "GET",
                f"/_matrix/client/v3/rooms/{room}/event/{reply['event_id']}",
                None,
                portal.partner_id,
            )
            assert status == 200 and event["content"] == {}, event

            # Back through history: a reload syncs the latest 20 events only (48 were sent),
            # scrolling up brings the rest.
            await page.reload()
            await first.click()
            await expect(timeline).to_contain_text("history 44")
            for _ in range(10):
                if "history 00" in await timeline.inner_text():
                    break
                await timeline.evaluate(
                    "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }"
                )
                await page.wait_for_timeout(700)
            await expect(timeline).to_contain_text("history 00")
            await assert_clean(watch)
    finally:
        await context.close()
