"""The plugin's wp-admin screens in Debian's Chromium, as a firm's administrator uses them: each
page loads without a console error or an uncaught exception, asks nothing of another origin, and
the plugin's part of it has no serious or critical axe-core violation (the other screens' tests
check theirs with what they show: a refusal, a filter, a dialog)."""

from __future__ import annotations

from playwright.async_api import Browser

from .wp_browser import assert_accessible, logged_in
from .wp_harness import WordPressSite

# Core screens the plugin adds to or changes, and its own, with the part of each that is the
# plugin's (what axe-core checks: core's own markup is WordPress's to fix).
ADMIN_PAGES = (
    ("/wp-admin/", None),
    ("/wp-admin/users.php", "th.column-firm_chat, td.column-firm_chat"),
    ("/wp-admin/profile.php", ".firm-bridge-profile-heading, .firm-bridge-profile"),
    ("/wp-admin/user-new.php", ".firm-bridge-profile-heading, .firm-bridge-profile"),
    ("/wp-admin/edit.php?post_type=firm_matter", "#posts-filter"),
    ("/wp-admin/post-new.php?post_type=firm_matter", "#firm_bridge_matter, #submitdiv"),
    ("/wp-admin/admin.php?page=firm-bridge", "#wpbody-content"),
    ("/wp-admin/admin.php?page=firm-bridge-settings", "#wpbody-content"),
    ("/wp-admin/admin.php?page=firm-bridge-restrictions", "#wpbody-content"),
    ("/wp-admin/export-personal-data.php", None),
)


async def test_wp_admin_pages_run_their_scripts(
    site: WordPressSite, chromium_browser: Browser
) -> None:
    """wp-admin's own scripts load and run: the test WordPress must be whole (Debian ships some
    of core's files as relative symlinks, underscore.js among them)."""
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "admin-pages") as (
        page,
        watch,
    ):
        for path, ours in ADMIN_PAGES:
            response = await page.goto(site.url + path)
            assert response is not None and response.status == 200, path
            await page.wait_for_load_state("load")
            await watch.assert_clean()
            if ours:
                assert await page.locator(ours).count(), (path, ours)
                await assert_accessible(page, ours)
        # The dashboard's widgets are built with underscore's templates (wp-util, backbone).
        await page.goto(site.url + "/wp-admin/")
        assert await page.evaluate("() => typeof window._ === 'function'")
