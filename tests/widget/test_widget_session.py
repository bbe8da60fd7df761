"""Leaving: a shared computer keeps nothing after "sign out of chat" or a WordPress logout, and a
departure shows that access ended within 5 seconds, with syncing stopped."""

from __future__ import annotations

import html
import re
import time

from browser import artifacts_on_failure
from playwright.async_api import Browser, Page, expect

from .conftest import Portal, answer_computer, assert_clean, keep_recovery_key, sync_store_name


async def chat_databases(page: Page) -> list[str]:
    return await page.evaluate("async () => (await indexedDB.databases()).map(d => d.name)")


async def client_devices(portal: Portal) -> set[str]:
    data = await portal.wp.hs.admin_get(f"/_synapse/admin/v2/users/{portal.client_id}/devices")
    return {d["device_id"] for d in data["devices"] if not d.get("dehydrated")}


async def test_shared_computer_leaves_nothing(portal: Portal, chromium_browser: Browser) -> None:
    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context, computer="shared")
        async with artifacts_on_failure(page, "widget-shared"):
            await keep_recovery_key(page)
            await expect(page.locator(".fc-footer")).to_contain_text("shared computer")
            # The keys (the crypto store's two databases) and the sync state live in IndexedDB
            # while signed in; all of them go.
            stores = set(await chat_databases(page))
            assert sync_store_name(portal.client_id) in stores, stores
            assert f"firm-chat:{portal.client_id}::matrix-sdk-crypto" in stores, stores
            before = await client_devices(portal)
            await page.get_by_role("button", name="Sign out of chat on this computer").click()
            await expect(page.locator(".fc-status")).to_contain_text("Nothing from the chat")
            assert await chat_databases(page) == []
            assert await page.evaluate("Object.keys(localStorage)") == []
            gone = before - await client_devices(portal)
            assert len(gone) == 1, "this browser's device is deleted on the homeserver"

            # The next person at this computer is asked again; logging out of WordPress in
            # another tab ends the chat here and wipes it.
            await page.reload()
            await answer_computer(page, "shared")
            unlock = page.locator(".fc-unlock")
            await expect(unlock).to_be_visible(timeout=60_000)
            await unlock.get_by_role("button", name="Not now").click()
            assert sync_store_name(portal.client_id) in await chat_databases(page)
            other = await context.new_page()
            await other.goto(portal.wp.site.url + "/wp-login.php?action=logout")
            async with other.expect_navigation():
                await other.get_by_role("link", name="log out").click()
            assert "loggedout=true" in other.url
            await expect(page.locator(".fc-ended")).to_contain_text(
                "logged out of the portal", timeout=5_000
            )

            async def wiped() -> bool:
                return await chat_databases(page) == []

            deadline = time.monotonic() + 10
            while not await wiped():
                assert time.monotonic() < deadline, await chat_databases(page)
                await page.wait_for_timeout(200)
            await other.close()
            await assert_clean(watch)
    finally:
        await context.close()


async def test_departure_ends_access_within_5_seconds(
    portal: Portal, chromium_browser: Browser
) -> None:
    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(
            context,
            # The SDK logs the refused token itself (it has no refresh token to try).
            allow_console=(r"status of 40[13]", r"M_UNKNOWN_TOKEN", r"Unable to refresh token"),
        )
        async with artifacts_on_failure(page, "widget-departure"):
            await keep_recovery_key(page)
            await expect(page.get_by_label("Message")).to_be_visible()
            await portal.wp.site.update_user(portal.client_wp, meta={"firm_suspended": True})
            await portal.wp.wait_bridge("person", portal.client_wp, active=False)
            ended = time.monotonic()
            await expect(page.locator(".fc-ended")).to_contain_text(
                "access to secure chat has ended", timeout=5_000
            )
            assert time.monotonic() - ended < 5
            assert await page.get_by_label("Message").count() == 0
            # Syncing stopped: no request to the homeserver for a while.
            count = len(watch.requests)
            await page.wait_for_timeout(3_000)
            later = [u for u in watch.requests[count:] if u.startswith(portal.clients_url)]
            assert later == [], later
            await assert_clean(watch)
    finally:
        await context.close()


async def test_logout_clears_a_shared_computer_without_a_chat_tab(portal: Portal) -> None:
    """With no chat tab open to wipe itself, WordPress's logout answer tells the browser to
    delete the site's storage (Clear-Site-Data) for a person who said "shared computer" (the
    widget's cookie), and not for a personal computer."""
    site = portal.wp.site
    for shared, expected in ((True, '"storage"'), (False, None)):
        session = await site.browser(portal.client_login, portal.client_password)
        try:
            if shared:
                session.cookie_jar.update_cookies({"firm_chat_shared": "1"})
            async with session.get(site.url + "/wp-login.php?action=logout") as r:
                page = await r.text()
            link = re.search(r'href="([^"]*action=logout[^"]*_wpnonce=[^"]*)"', page)
            assert link, page[-1500:]
            async with session.get(html.unescape(link.group(1)), allow_redirects=False) as r:
                assert r.status == 302, r.status
                assert "loggedout=true" in r.headers["Location"]
                assert r.headers.get("Clear-Site-Data") == expected, (shared, dict(r.headers))
        finally:
            await session.close()
