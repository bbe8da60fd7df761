"""Firm Bridge → Settings in Debian's Chromium: the Settings API form, a refused secret that keeps
the other fields, Test connection against the real bridge and homeserver, and what an
administrator sees while the bridge is not configured."""

from __future__ import annotations

from conftest import SECRET
from playwright.async_api import Browser

from .conftest import WpFirm
from .wp_browser import assert_accessible, logged_in
from .wp_harness import php_literal

SCREEN = "/wp-admin/admin.php?page=firm-bridge-settings"


async def test_settings_with_a_bad_secret_and_test_connection(
    wp: WpFirm, chromium_browser: Browser
) -> None:
    site = wp.site
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "settings") as (
        page,
        _,
    ):
        await page.goto(site.url + SCREEN)
        await assert_accessible(page, "#wpbody-content")
        # Everything answers.
        async with page.expect_navigation():
            await page.get_by_role("button", name="Test connection").click()
        result = page.locator(".firm-bridge-connection")
        text = await result.inner_text()
        assert "notice-success" in (await result.get_attribute("class") or ""), text
        assert "accepts this site's signature" in text and "Matrix v1." in text, text

        # A homeserver address and a secret too short: the secret is refused and says why;
        # the address is saved as typed.
        await page.get_by_label("Homeserver address").fill(wp.hs.url + "/")
        await page.get_by_label("Shared secret").fill("short")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save settings").click()
        error = page.locator(".notice-error, .error").first
        assert "at least 32 characters" in await error.inner_text()
        assert "Settings saved." not in await page.content()
        assert await page.get_by_label("Homeserver address").input_value() == wp.hs.url
        assert await site.php("return Firm_Bridge_Settings::secret();") == SECRET

        # The bridge no longer accepts the site's signature: Test connection says what to fix.
        await site.php("Firm_Bridge_Settings::set_secret(str_repeat('y', 40)); return true;")
        try:
            async with page.expect_navigation():
                await page.get_by_role("button", name="Test connection").click()
            text = await page.locator(".firm-bridge-connection").inner_text()
            assert "refuses this site's signature" in text and "shared secret differs" in text
        finally:
            await site.php(f"Firm_Bridge_Settings::set_secret({php_literal(SECRET)}); return true;")

        # A good secret typed in the form is saved.
        await page.get_by_label("Shared secret").fill(SECRET)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save settings").click()
        assert "Settings saved." in await page.locator(".notice-success").first.inner_text()
        await assert_accessible(page, "#wpbody-content")


async def test_not_configured_notice_and_plugins_link(
    wp: WpFirm, chromium_browser: Browser
) -> None:
    site = wp.site
    await site.php("update_option('firm_bridge_url', ''); return true;")
    try:
        async with logged_in(chromium_browser, site, "admin", site.admin_password, "unset") as (
            page,
            _,
        ):
            await page.goto(site.url + "/wp-admin/")
            notice = page.locator(".firm-bridge-not-configured")
            assert "not connected" in await notice.inner_text()
            async with page.expect_navigation():
                await notice.get_by_role("link").click()
            assert "page=firm-bridge-settings" in page.url
            assert not await page.locator(".firm-bridge-not-configured").count()
            await page.goto(site.url + "/wp-admin/plugins.php")
            row = page.locator("tr[data-plugin='firm-bridge/firm-bridge.php']")
            await row.get_by_role("link", name="Settings").click()
            assert "page=firm-bridge-settings" in page.url
    finally:
        await site.php(f"update_option('firm_bridge_url', {php_literal(wp.bp.url)}); return true;")
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "set") as (page, _):
        await page.goto(site.url + "/wp-admin/")
        assert not await page.locator(".firm-bridge-not-configured").count()
