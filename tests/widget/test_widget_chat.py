"""The portal widget in Debian's Chromium: sign-in, one device per browser, one tab, messages both
ways decrypted, no HTML from other clients, a closed matter read-only, accessible at 360 px."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from browser import artifacts_on_failure, axe_violations, describe_violations
from dbscan import scan_sqlite
from playwright.async_api import Browser, Locator, Page, expect

from .conftest import (
    Portal,
    assert_clean,
    eventually,
    idb_dump,
    keep_recovery_key,
    sync_store_name,
    wordpress_hits,
)

WIDGET_DIST = Path(__file__).resolve().parents[2] / "wp_plugin_shim" / "widget" / "dist"
XSS_BODY = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>'
XSS_HTML = '<script>window.__xss=3</script><img src=x onerror="window.__xss=4"><b>bold</b>'


async def dehydrated_devices(portal: Portal) -> set[str]:
    data = await portal.wp.hs.admin_get(f"/_synapse/admin/v2/users/{portal.client_id}/devices")
    return {d["device_id"] for d in data["devices"] if d.get("dehydrated")}


async def test_chat_both_ways_same_device_one_tab(
    portal: Portal, chromium_browser: Browser
) -> None:
    marker_out = f"from-the-client-{secrets.token_hex(6)}"
    marker_in = f"from-the-attorney-{secrets.token_hex(6)}"
    context = await chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-chat"):
            await keep_recovery_key(page)
            room = page.get_by_role("button", name=portal.label)
            await expect(room).to_be_visible()
            await expect(room).to_have_attribute("aria-current", "true")
            device = json.loads(await page.evaluate("localStorage.getItem('firm-chat')"))[
                "devices"
            ][portal.client_id]
            dehydrated = await dehydrated_devices(portal)
            assert len(dehydrated) == 1, dehydrated

            # The client writes; the attorney's device decrypts it.
            await page.get_by_label("Message").fill(marker_out)
            await page.get_by_role("button", name="Send").click()
            got = await portal.attorney.wait_for_text(portal.room_id, marker_out, timeout=30)
            assert got == marker_out

            # The attorney writes; the widget shows it decrypted.
            marker_in_id = await portal.attorney.send_text(portal.room_id, marker_in)
            await expect(page.locator(".fc-timeline")).to_contain_text(marker_in)

            # Other clients' HTML is text: nothing runs, no element is made from it; links
            # open without a way back to the page.
            await portal.attorney.send_content(
                portal.room_id,
                {
                    "msgtype": "m.text",
                    "body": XSS_BODY + " see https://example.test/x",
                    "format": "org.matrix.custom.html",
                    "formatted_body": XSS_HTML,
                },
            )
            await expect(page.locator(".fc-timeline")).to_contain_text("window.__xss=2")
            assert await page.evaluate("window.__xss") is None
            assert (
                await page.locator(".fc-timeline img, .fc-timeline script, .fc-timeline b").count()
                == 0
            )
            link = page.locator(".fc-timeline a[href='https://example.test/x']")
            await expect(link).to_have_attribute("rel", "noopener noreferrer")

            # Accessible (axe-core: nothing serious) and usable at 360 px.
            bad = await axe_violations(page, include=".firm-chat")
            assert not bad, describe_violations(bad)
            await page.set_viewport_size({"width": 360, "height": 740})
            overflow = await page.evaluate(
                "() => { const r = document.querySelector('.fc').getBoundingClientRect();"
                " return r.right - document.documentElement.clientWidth; }"
            )
            assert overflow <= 1, overflow
            await expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
            bad = await axe_violations(page, include=".firm-chat")
            assert not bad, describe_violations(bad)

            # Reload: the same device, no question asked, history still decrypted.
            await page.reload()
            await expect(page.locator(".fc-timeline")).to_contain_text(marker_in)
            assert await page.locator(".fc-dialog, .fc-unlock").count() == 0
            again = json.loads(await page.evaluate("localStorage.getItem('firm-chat')"))
            assert again["devices"][portal.client_id] == device

            # The sync state kept for the next visit holds the messages as the homeserver
            # delivered them, ciphertext: the attorney's message is there by its event id,
            # neither text is.
            store = sync_store_name(portal.client_id)

            async def saved() -> bool:
                return marker_in_id in await idb_dump(page, store)

            await eventually(saved)
            dump = await idb_dump(page, store)
            assert '"m.room.encrypted"' in dump and '"ciphertext"' in dump
            assert marker_in not in dump and marker_out not in dump
            devices = await portal.wp.hs.admin_get(
                f"/_synapse/admin/v2/users/{portal.client_id}/devices"
            )
            ids = {d["device_id"] for d in devices["devices"]}
            assert device in ids

            # A second tab is refused, and may take over; the first then says so.
            second = await context.new_page()
            await second.goto(portal.page_url)
            await expect(second.locator(".fc-status")).to_contain_text("open in another tab")
            await second.get_by_role("button", name="Use chat in this tab instead").click()
            await expect(page.locator(".fc-status")).to_contain_text("opened in another tab")
            await expect(second.locator(".fc-timeline")).to_contain_text(marker_in)
            await second.close()
            # Return visits within the week keep the dehydrated device first use made (a new one
            # each page load made every sender fetch the client's keys again).
            assert await dehydrated_devices(portal) == dehydrated

            await assert_clean(watch)
    finally:
        await context.close()

    # Neither the homeserver's, the bridge's nor WordPress's database holds the text.
    needles = [marker_out, marker_in]
    assert scan_sqlite(portal.wp.hs.server.db_path, needles) == []
    assert (
        scan_sqlite(Path(portal.wp.bp.config["database.uri"].removeprefix("sqlite:")), needles)
        == []
    )
    assert await wordpress_hits(portal.wp, needles) == []


async def test_closed_matter_is_read_only(portal: Portal, chromium_browser: Browser) -> None:
    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-closed"):
            await keep_recovery_key(page)
            await expect(page.get_by_label("Message")).to_be_visible()
            await portal.wp.site.update_matter(
                portal.matter_wp, meta={"firm_matter_status": "closed"}
            )
            await portal.wp.wait_bridge("matter", portal.matter_wp, status="closed")

            async def power_applied() -> bool:
                state = await portal.wp.hs.room_state(portal.room_id)
                return state[("m.room.power_levels", "")].get("events_default") == 100

            await eventually(power_applied)
            # The open page follows the room's power levels; a new visit too.
            await expect(page.get_by_role("note")).to_contain_text("This matter is closed")
            await page.reload()
            await expect(page.get_by_role("note")).to_contain_text("This matter is closed")
            assert await page.get_by_label("Message").count() == 0
            await assert_clean(watch)
    finally:
        await context.close()


async def test_module_only_on_chat_pages(portal: Portal) -> None:
    """The widget is an ES module with a hashed name, on pages with the chat only."""
    manifest = json.loads((WIDGET_DIST / "manifest.json").read_text())
    browser = await portal.wp.site.browser(portal.client_login, portal.client_password)
    try:
        async with browser.get(portal.page_url) as r:
            page = await r.text()
        tag = re.search(r"<script[^>]*widget/dist/chat-[^>]*>", page)
        assert tag, page[-2000:]
        assert 'type="module"' in tag.group(0)
        assert manifest["chat"]["js"] in tag.group(0) and "?ver=" not in tag.group(0)
        assert manifest["chat"]["css"] in page
        async with browser.get(portal.wp.site.url + "/sample-page/") as r:
            other = await r.text()
        assert r.status == 200 and "widget/dist/" not in other
    finally:
        await browser.close()


async def test_toolbar_loads_nothing_from_other_origins(
    portal: Portal, chromium_browser: Browser
) -> None:
    """With WordPress's toolbar shown to the logged-in client and avatars on (WordPress's
    default), the chat page still loads nothing from another origin: the toolbar's avatar of
    the person is the plugin's local picture, not Gravatar's (the md5 of their e-mail address)."""
    site = portal.wp.site
    await site.php(
        f"update_user_meta({portal.client_wp}, 'show_admin_bar_front', 'true');"
        " update_option('show_avatars', 1); return true;"
    )
    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-toolbar"):
            await keep_recovery_key(page)
            await expect(page.locator(".fc[data-state='ready']")).to_be_visible()
            toolbar = page.locator("#wpadminbar")
            await expect(toolbar).to_be_visible()
            avatar = toolbar.locator("img.avatar").first
            await expect(avatar).to_be_attached()
            src = await avatar.get_attribute("src")
            assert src == f"{site.url}/wp-content/plugins/firm-bridge/assets/avatar.svg", src
            assert await avatar.evaluate("img => img.complete && img.naturalWidth > 0")
            srcset = await avatar.get_attribute("srcset") or ""
            assert "gravatar" not in srcset, srcset
            # Anyone's avatar that belongs to an account (the partner's, by e-mail) is local too;
            # an address with no account keeps WordPress's own (Gravatar) choice.
            urls = await site.php(
                f"$u = get_user_by('id', {portal.partner_wp});"
                " return [get_avatar_url($u->user_email), get_avatar_url('nobody@example.org')];"
            )
            assert urls[0].endswith("/assets/avatar.svg") and "gravatar.com" in urls[1], urls
            await assert_clean(watch)
            assert any(u.endswith("/assets/avatar.svg") for u in watch.requests)
    finally:
        await context.close()
        await site.php(
            f"update_user_meta({portal.client_wp}, 'show_admin_bar_front', 'false');"
            " update_option('show_avatars', 0); return true;"
        )


async def focused(page: Page) -> str:
    """What has focus: its accessible text, for the test's messages."""
    return await page.evaluate(
        "() => { const el = document.activeElement;"
        " return `${el.tagName} ${el.getAttribute('aria-label') || el.textContent}`.slice(0, 80); }"
    )


async def tab_to(page: Page, target: Locator, most: int = 25, back: bool = False) -> list[str]:
    """Presses Tab (or Shift+Tab) until `target` has focus; returns what had focus on the way."""
    seen: list[str] = []
    for _ in range(most):
        if await target.evaluate("el => el === document.activeElement"):
            return seen
        seen.append(await focused(page))
        await page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"not reached by the keyboard; focus went through {seen}")


async def test_keyboard_only(portal: Portal, chromium_browser: Browser) -> None:
    """Chat without a mouse: from the room list into the room, write and send with Enter, reach
    the attorney's message's Reply by Tab and answer it; the order goes list, room, message box.
    The keys are kept in IndexedDB under the person's own prefix."""
    theirs = f"question-{secrets.token_hex(4)}"
    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-keyboard"):
            await keep_recovery_key(page)
            room = page.get_by_role("button", name=portal.label)
            await room.focus()
            await page.keyboard.press("Enter")
            await expect(room).to_have_attribute("aria-current", "true")
            box = page.get_by_role("textbox", name="Message")
            path = await tab_to(page, box)
            assert any("New conversation" in p for p in path), path  # the list's end first
            await page.keyboard.type("typed, not clicked")
            await page.keyboard.press("Enter")
            await portal.attorney.wait_for_text(portal.room_id, "typed, not clicked")
            await expect(box).to_have_value("")
            await expect(box).to_be_focused()

            await portal.attorney.send_text(portal.room_id, theirs)
            message = page.locator(".fc-msg", has_text=theirs)
            await expect(message).to_be_visible()
            await tab_to(page, message.get_by_role("button", name="Reply"), back=True)
            await page.keyboard.press("Enter")
            await expect(page.locator(".fc-context")).to_contain_text("Replying to")
            await expect(box).to_be_focused()
            await page.keyboard.type("answered by keyboard")
            await page.keyboard.press("Enter")
            await portal.attorney.wait_for_text(portal.room_id, "answered by keyboard")
            reply = next(m for m in portal.attorney.messages if m.body == "answered by keyboard")
            question = next(m for m in portal.attorney.messages if m.body == theirs)
            assert reply.content is not None
            assert reply.content["m.relates_to"]["m.in_reply_to"]["event_id"] == question.event_id

            names = await page.evaluate(
                "async () => (await indexedDB.databases()).map((d) => d.name)"
            )
            # Every store is the person's own: the crypto store under the prefix, the sync store
            # under the prefix too (matrix-js-sdk puts its own name in front of the one it gets).
            prefix = f"firm-chat:{portal.client_id}::"
            assert sorted(names) == [f"{prefix}matrix-sdk-crypto", f"matrix-js-sdk:{prefix}sync"], (
                names
            )
            await assert_clean(watch)
    finally:
        await context.close()
