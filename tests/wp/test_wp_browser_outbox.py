"""The Outbox screen in Debian's Chromium: "Deliver now" sends what waits, whatever its retry time,
and says plainly what happened."""

from __future__ import annotations

from playwright.async_api import Browser

from .conftest import WpFirm
from .wp_browser import logged_in


async def test_deliver_now_sends_rows_in_backoff(wp: WpFirm, chromium_browser: Browser) -> None:
    site = wp.site
    # The bridge is down: the first row is tried and waits ten minutes; the next one, which
    # names the first person, waits behind it.
    await site.php("update_option('firm_bridge_retry_base', 600); return true;")
    await wp.bp.stop()
    before = await site.last_outbox_id()
    partner = await wp.person("dan", "firm_partner")
    client = await wp.person("dee", "firm_client", firm_attorneys=[partner])
    rows = await site.outbox(before)
    assert [r["status"] for r in rows] == ["pending", "pending"], rows
    assert rows[0]["attempts"] == 1 and rows[0]["last_error"].startswith("no answer")
    await wp.bp.start()

    async with logged_in(chromium_browser, site, "admin", site.admin_password, "deliver-now") as (
        page,
        _,
    ):
        await page.goto(site.url + "/wp-admin/admin.php?page=firm-bridge")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Deliver now").click()
        notice = page.locator(".notice", has_text="deliver")
        text = await notice.inner_text()
        assert "notice-success" in (await notice.get_attribute("class") or ""), text
        assert "2 delivered" in text and "pending" not in text, text
    rows = await site.outbox(before)
    assert [(r["object_id"], r["status"]) for r in rows] == [
        (partner, "delivered"),
        (client, "delivered"),
    ]
    await wp.wait_bridge("person", client, attorneys=[partner])


async def test_deliver_now_says_when_the_bridge_does_not_answer(
    wp: WpFirm, chromium_browser: Browser
) -> None:
    site = wp.site
    await wp.bp.stop()
    before = await site.last_outbox_id()
    await wp.person("eve", "firm_partner")
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "deliver-down") as (
        page,
        _,
    ):
        await page.goto(site.url + "/wp-admin/admin.php?page=firm-bridge")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Deliver now").click()
        notice = page.locator(".notice-error")
        text = await notice.inner_text()
        assert "did not answer" in text and "1 waiting" in text, text
    [row] = await site.outbox(before)
    assert row["status"] == "pending"
    await wp.bp.start()
