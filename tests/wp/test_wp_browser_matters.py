"""Matters in wp-admin, in Debian's Chromium: the edit screen speaks of matters and rooms (not of
posts and visibility), says when a paralegal will be kept out, the list's filters are labelled,
and trashing a matter asks first, then closes its room."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Dialog, Page

from .conftest import WpFirm
from .wp_browser import assert_accessible, logged_in


def answer_next_dialog(page: Page, accept: bool, seen: list[str]) -> None:
    async def answer(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", lambda d: asyncio.ensure_future(answer(d)))


async def test_matter_screens(wp: WpFirm, chromium_browser: Browser) -> None:
    site = wp.site
    partner = await wp.person("mia", "firm_partner")
    client = await wp.person("max", "firm_client", firm_attorneys=[partner])
    await wp.person("pax", "firm_paralegal", firm_attorneys=[partner])
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "matters") as (
        page,
        _,
    ):
        await page.goto(site.url + "/wp-admin/post-new.php?post_type=firm_matter")
        # The Publish box does not offer a visibility: matters are never public.
        assert not await page.locator("#visibility").is_visible()
        await page.get_by_label("Matter title (people in the matter see it)").fill("Max's estate")
        await page.get_by_label("Matter number").fill(wp.number(1))
        await page.get_by_label("Clients", exact=True).select_option(str(client))
        await page.get_by_label("Responsible partner").select_option(str(partner))
        hint = await page.locator("#firm_bridge_matter").inner_text()
        assert "To choose several, hold Ctrl" in hint

        # Privileged while a paralegal is assigned: said at once, next to the box.
        note = page.locator("#firm-privileged-note")
        await page.get_by_label("Paralegals", exact=True).select_option(label="Pax")
        assert not await note.is_visible()
        await page.get_by_label("Privileged (paralegals stay out of the room)").check()
        assert "Pax will not be in it" in await note.inner_text()
        await page.get_by_label("Privileged (paralegals stay out of the room)").uncheck()
        assert not await note.is_visible()
        await assert_accessible(page, "#firm_bridge_matter")

        async with page.expect_navigation():
            await page.locator("#publish").click()
        message = await page.locator("#message").inner_text()
        assert "Matter opened" in message and "Post published" not in message, message
        matter = int(page.url.split("post=")[1].split("&")[0])
        await wp.wait_bridge("matter", matter, status="open")

        # The list: labelled filters; trashing asks, and "Cancel" keeps the matter.
        await page.goto(site.url + "/wp-admin/edit.php?post_type=firm_matter")
        for label in ("Filter by open or closed", "Filter by privilege"):
            assert await page.get_by_label(label).count() == 1, label
        await assert_accessible(page, "#posts-filter")
        row = page.locator(f"#post-{matter}")
        await row.hover()
        seen: list[str] = []
        answer_next_dialog(page, False, seen)
        await row.locator("a.submitdelete").click()
        await page.wait_for_timeout(300)
        assert seen and "chat room closes" in seen[0], seen
        assert await site.php(f"return get_post_status({matter});") == "publish"
        await row.hover()
        answer_next_dialog(page, True, seen)
        async with page.expect_navigation():
            await row.locator("a.submitdelete").click()
        notice = await page.locator("#message").inner_text()
        assert "moved to the Trash; its chat room is closed" in notice, notice
        await wp.wait_bridge("matter", matter, status="closed")
