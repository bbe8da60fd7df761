"""People's own profiles in Debian's Chromium: everyone in the firm can save theirs (a new password,
a website), and none of them can rename themselves."""

from __future__ import annotations

import secrets

from playwright.async_api import Browser

from .wp_browser import assert_accessible, logged_in
from .wp_harness import WordPressSite, php_literal

FIRM_ROLES = ("firm_client", "firm_paralegal", "firm_assistant", "firm_associate", "firm_partner")


async def test_everyone_saves_their_own_profile_but_not_their_name(
    site: WordPressSite, chromium_browser: Browser
) -> None:
    for role in FIRM_ROLES:
        login = f"p{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        new_password = secrets.token_urlsafe(18)
        uid = await site.create_user(login, role, name="Sam Roe", password=password)
        names = (
            f"$u = get_userdata({uid});"
            " return [$u->display_name, $u->first_name, $u->last_name, $u->nickname];"
        )
        before = await site.php(names)
        async with logged_in(chromium_browser, site, login, password, f"profile-{role}") as (
            page,
            _,
        ):
            await page.goto(site.url + "/wp-admin/profile.php")
            # The name is shown read-only, with the reason.
            for field in ("#first_name", "#last_name", "#nickname"):
                assert await page.locator(field).get_attribute("readonly") is not None, field
            assert await page.locator("#display_name").is_disabled()
            note = page.locator("#firm-bridge-name-note")
            assert "the firm sets it" in await note.inner_text()
            await assert_accessible(page, "#your-profile")
            # Someone tries anyway: the page's fields are changed by script, as a hostile client
            # would, together with what they may change.
            await page.evaluate(
                """() => { for (const id of ['first_name', 'last_name', 'nickname']) {
                             const f = document.getElementById(id);
                             f.readOnly = false; f.value = 'Pia (Partner)'; } }"""
            )
            await page.fill("#url", "https://sam.example")
            await page.click("button.wp-generate-pw")
            await page.fill("#pass1", new_password)
            async with page.expect_navigation():
                await page.click("#submit")
            message = page.locator("#message")
            assert "Profile updated." in await message.inner_text(), role
            assert not await page.locator(".error, .notice-error").count(), role
        assert await site.php(names) == before, role
        saved = await site.php(
            f"$u = get_userdata({uid}); return [$u->user_url,"
            f" wp_check_password({php_literal(new_password)}, $u->user_pass, {uid})];"
        )
        assert saved == ["https://sam.example", True], role
        # The new password opens the portal.
        async with logged_in(chromium_browser, site, login, new_password, f"relogin-{role}"):
            pass
