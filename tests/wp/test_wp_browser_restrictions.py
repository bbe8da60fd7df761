"""The Restrictions screen in Debian's Chromium: a role table the bridge would refuse is refused
before anything is saved, naming the field; one the bridge refuses is not kept either."""

from __future__ import annotations

import json

from conftest import SECRET
from playwright.async_api import Browser, Page

from .conftest import WpFirm
from .wp_browser import logged_in
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
