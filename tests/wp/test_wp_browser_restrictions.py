"""The Restrictions screen in Debian's Chromium: a role table the bridge would refuse is refused
before anything is saved, naming the field; one the bridge refuses is not kept either."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SECRET
from playwright.async_api import Browser, Page

from .conftest import WpFirm
from .wp_browser import assert_accessible, logged_in
from .wp_harness import php_literal

SCREEN = "/wp-admin/admin.php?page=firm-bridge-restrictions"
JSON_FIELD = "textarea[name=firm_bridge_policy]"


async def bridge_table(wp: WpFirm) -> dict:
    status, data = await wp.api.request("GET", "/_firm/v1/policy")
    assert status == 200, data
    return data["policy"]


async def save_json(page: Page, table: dict | str) -> str:
    """Imports a table as JSON and saves it; returns the notice the screen shows."""
    text = table if isinstance(table, str) else json.dumps(table, indent=2)
    await page.locator(JSON_FIELD).fill(text)
    async with page.expect_navigation():
        await page.locator("form", has=page.locator(JSON_FIELD)).locator("[type=submit]").click()
    notice = page.locator(".wrap .notice").first
    return f"{await notice.get_attribute('class')}: {await notice.inner_text()}"


async def test_refused_role_table_is_not_saved(wp: WpFirm, chromium_browser: Browser) -> None:
    site = wp.site
    table = await bridge_table(wp)
    await site.php(
        "delete_option('firm_bridge_policy'); Firm_Bridge_Settings::install(); return true;"
    )
    stored = "return get_option('firm_bridge_policy');"
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "restrictions") as (
        page,
        _,
    ):
        await page.goto(site.url + SCREEN)
        before = await site.last_outbox_id()

        # A level only the bridge may hold: refused here, naming the field; nothing is saved
        # or sent, and what was typed is still in the form to be corrected.
        bad = json.loads(json.dumps(table))
        bad["roles"]["client"]["power_level"] = 150
        notice = await save_json(page, bad)
        assert "notice-error" in notice and "roles.client.power_level" in notice, notice
        assert "from 0 to 99" in notice, notice
        assert await site.php(stored) == ""
        assert await site.last_outbox_id() == before
        assert '"power_level": 150' in await page.locator(JSON_FIELD).input_value()

        # The bridge itself refuses (here: it no longer accepts the plugin's signature): the
        # firm's table stays as it was, and the screen says so in red with the bridge's answer.
        good = json.loads(json.dumps(table))
        good["roles"]["client"]["power_level"] = 12
        await site.php("Firm_Bridge_Settings::set_secret(str_repeat('x', 40)); return true;")
        try:
            notice = await save_json(page, good)
        finally:
            await site.php(f"Firm_Bridge_Settings::set_secret({php_literal(SECRET)}); return true;")
        assert "notice-error" in notice and "refused" in notice and "401" in notice, notice
        assert await site.php(stored) == ""
        assert (await bridge_table(wp))["roles"]["client"]["power_level"] == 10

        # A table the bridge takes is saved, and the screen says the bridge uses it now.
        notice = await save_json(page, good)
        assert "notice-success" in notice and "uses it now" in notice, notice
        assert json.loads(await site.php(stored))["roles"]["client"]["power_level"] == 12
        assert (await bridge_table(wp))["roles"]["client"]["power_level"] == 12


async def test_role_table_grid(wp: WpFirm, chromium_browser: Browser, tmp_path: Path) -> None:
    """The table as a form: no JSON to type, every rule explained, a refusal names the role and
    field and marks it; the JSON stays available to export."""
    site = wp.site
    await site.php(
        "delete_option('firm_bridge_policy'); Firm_Bridge_Settings::install(); return true;"
    )
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "grid") as (
        page,
        _,
    ):
        await page.goto(site.url + SCREEN)
        # WordPress has none saved: the bridge's table is shown, and the screen says so.
        assert "the table the bridge uses now" in await page.locator(".notice-info").inner_text()
        await assert_accessible(page, "#wpbody-content")
        level = page.get_by_label("Client: power level")
        assert await level.input_value() == "10"
        firm = page.get_by_label("Associate may talk with: Everyone at the firm")
        assert not await firm.is_checked()
        assert await page.get_by_label("Paralegal: matter rooms").input_value() == (
            "assigned_non_privileged"
        )
        help_text = await page.locator(".firm-bridge-rules").inner_text()
        assert "Every partner, associate, paralegal and legal assistant." in help_text

        # An empty level: refused, naming the role and the field, which is marked.
        await level.fill("")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save and send to the bridge").click()
        notice = await page.locator(".wrap .notice-error").first.inner_text()
        assert "Client, power level" in notice and "roles.client.power_level" in notice, notice
        level = page.get_by_label("Client: power level")
        assert await level.get_attribute("aria-invalid") == "true"
        assert await site.php("return get_option('firm_bridge_policy');") == ""

        # Corrected, with a rule ticked: saved, and the bridge uses it.
        await level.fill("15")
        await page.get_by_label("Associate may talk with: Everyone at the firm").check()
        await page.get_by_label("Largest group conversation").fill("6")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save and send to the bridge").click()
        assert "uses it now" in await page.locator(".wrap .notice-success").inner_text()
        table = await bridge_table(wp)
        assert table["roles"]["client"]["power_level"] == 15 and table["max_group_size"] == 6
        assert "firm_members" in table["roles"]["associate"]["conversations"]
        assert await page.get_by_label("Associate may talk with: Everyone at the firm").is_checked()
        # The same table, as JSON, to copy or download.
        exported = json.loads(await page.get_by_label("The role table as JSON").input_value())
        assert exported["roles"]["client"]["power_level"] == 15
        async with page.expect_download() as info:
            await page.get_by_role("link", name="Download as a file").click()
        path = tmp_path / "table.json"
        await (await info.value).save_as(path)
        assert json.loads(path.read_text())["max_group_size"] == 6
        await assert_accessible(page, "#wpbody-content")

    # The narrow screen: the grid scrolls inside its box, the page does not.
    async with logged_in(
        chromium_browser, site, "admin", site.admin_password, "grid-375", width=375
    ) as (page, _):
        await page.goto(site.url + SCREEN)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, overflow
