"""WordPress's own personal-data tools (Tools → Export / Erase Personal Data) in Debian's Chromium,
with the plugin's exporter and eraser in them, as an administrator runs them for a client."""

from __future__ import annotations

import zipfile
from pathlib import Path

from playwright.async_api import Browser, Page

from .conftest import WpFirm
from .wp_browser import logged_in


async def add_request(page: Page, screen: str, email: str) -> None:
    """Adds a request on core's Tools screen without the e-mail confirmation step."""
    await page.goto(f"{page.url.split('/wp-admin/')[0]}/wp-admin/{screen}")
    await page.fill("#username_or_email_for_privacy_request", email)
    await page.uncheck("#send_confirmation_email")
    async with page.expect_navigation():
        await page.click("#submit")
    assert await page.locator(".notice-success").count(), await page.content()


async def test_personal_data_export_through_the_tools_screen(
    wp: WpFirm, chromium_browser: Browser, tmp_path: Path
) -> None:
    site = wp.site
    partner = await wp.person("tom", "firm_partner")
    client = await wp.person("tia", "firm_client", firm_attorneys=[partner])
    matter = await site.create_matter(
        "Tia's lease",
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
    )
    await wp.wait_bridge("matter", matter)
    tia = (await wp.wait_bridge("person", client))["user_id"]
    email = f"{wp.login('tia')}@example.com"
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "export") as (
        page,
        _,
    ):
        await page.goto(site.url + "/wp-admin/")
        await add_request(page, "export-personal-data.php", email)
        row = page.locator("tr", has_text=email)
        await row.hover()
        async with page.expect_download() as download_info:
            await row.get_by_role("button", name="Download personal data").click()
            # Core shows the outcome in the row: a failure (say "ZipArchive not available") is
            # reported as such rather than as a download that never comes.
            success = ".export-personal-data-success:not(.hidden)"
            failed = ".export-personal-data-failed:not(.hidden)"
            await row.locator(f"{success}, {failed}").first.wait_for()
            if await row.locator(failed).count():
                errors = await page.locator(".request-results").all_inner_texts()
                raise AssertionError(f"the export failed: {errors}")
        download = await download_info.value
        archive = tmp_path / "export.zip"
        await download.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        report = z.read("index.html").decode()
    assert "Secure chat" in report and tia in report
    assert wp.number(1) in report and "lease" in report
