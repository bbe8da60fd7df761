"""The Outbox screen in Debian's Chromium: "Deliver now" sends what waits, whatever its retry time,
and says plainly what happened."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Browser, Dialog, Locator, Page

from .conftest import WpFirm
from .wp_browser import assert_accessible, logged_in


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


def row_of(page: Page, row_id: int) -> Locator:
    """The list's row for outbox row `row_id`."""
    cell = page.locator("td.column-id", has_text=re.compile(rf"^#{row_id}$"))
    return page.locator("table.wp-list-table tbody tr", has=cell)


async def test_outbox_list(wp: WpFirm, chromium_browser: Browser) -> None:
    """WordPress's own list table: status filters with counts, paging, sorting, what each row
    changed in the field's words, a refused row marked once a later delivery superseded it, and
    "Resync everything" asked before it is done."""
    site = wp.site
    partner = await wp.person("olga", "firm_partner")
    client = await wp.person("otto", "firm_client", firm_attorneys=[partner])
    before = await site.last_outbox_id()
    # Refused (no client), then delivered with one: the refusal no longer matters.
    matter = await site.create_matter(
        "Otto's appeal", wp.number(1), firm_matter_responsible_partner=partner
    )
    [refused] = await site.wait_delivered(before)
    assert refused["status"] == "failed"
    await site.update_matter(matter, meta={"firm_matter_clients": [client]})
    await site.update_matter(matter, meta={"firm_matter_privileged": True})
    await site.update_matter(matter, meta={"firm_matter_legal_hold": True})
    rows = await site.wait_delivered(before)
    assert [r["status"] for r in rows] == ["failed", "delivered", "delivered", "delivered"]
    # Enough rows for a second page.
    await site.php(
        "global $wpdb; for ($i = 0; $i < 25; $i++) {"
        " $id = Firm_Bridge_Outbox::enqueue('policy', 0, 'PUT', '/_firm/v1/policy', null, [],"
        " 'Role table (Restrictions)', '{\"policy\":{}}');"
        " $wpdb->update(Firm_Bridge_Outbox::table(), ['status' => 'superseded'], ['id' => $id]); }"
        " return true;"
    )
    counts = await site.php(
        "return array_map(fn($s) => Firm_Bridge_Outbox::count($s),"
        " ['pending' => 'pending', 'failed' => 'failed', 'delivered' => 'delivered',"
        " 'superseded' => 'superseded']);"
    )
    screen = site.url + "/wp-admin/admin.php?page=firm-bridge"
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "outbox") as (
        page,
        _,
    ):
        await page.goto(screen)
        views = page.locator(".subsubsub")
        for label, key in (("Failed", "failed"), ("Delivered", "delivered")):
            text = await views.get_by_role("link", name=label).inner_text()
            assert f"({counts[key]})" in text, (label, text, counts)
        total = sum(counts.values())
        assert f"{total} items" in await page.locator(".displaying-num").first.inner_text()
        # Newest first, twenty a page; the second page has the rest.
        assert await page.locator("table.wp-list-table tbody tr").count() == 20
        await page.locator(".tablenav.top .next-page").click()
        await page.wait_for_load_state()
        assert "paged=2" in page.url
        assert await page.locator("table.wp-list-table tbody tr").count() == min(20, total - 20)

        # The failed filter: the refused row, with the bridge's answer, superseded since.
        await page.goto(screen)
        async with page.expect_navigation():
            await views.get_by_role("link", name="Failed").click()
        row = row_of(page, refused["id"])
        text = await row.inner_text()
        assert "a matter needs at least one client" in text, text
        assert f"superseded by #{rows[1]['id']}, delivered" in text, text
        await assert_accessible(page, "#wpbody-content")

        # What changed, in the field's words.
        await page.goto(screen + "&status=delivered")
        changes = {
            r["id"]: await row_of(page, r["id"]).locator("td.column-changes").inner_text()
            for r in rows[2:]
        }
        assert changes == {rows[2]["id"]: "privileged: on", rows[3]["id"]: "legal hold: on"}

        # Sorting by attempts, both ways.
        await page.locator("thead").get_by_role("link", name="Attempts").click()
        await page.wait_for_load_state()
        assert "orderby=attempts" in page.url

        # Resync everything asks first; "Cancel" sends nothing.
        last = await site.last_outbox_id()
        await page.goto(screen)
        questions: list[str] = []

        async def answer(dialog: Dialog, accept: bool) -> None:
            questions.append(dialog.message)
            await (dialog.accept() if accept else dialog.dismiss())

        page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
        await page.get_by_role("button", name="Resync everything").click()
        await page.wait_for_timeout(300)
        assert questions and "Resync everything?" in questions[0] and "every matter" in questions[0]
        assert await site.last_outbox_id() == last and "resync" not in page.url
        page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Resync everything").click()
        notice = await page.locator(".notice-success").inner_text()
        assert "requests queued" in notice, notice
        assert await site.last_outbox_id() > last
