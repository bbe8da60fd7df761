"""People's own profiles in Debian's Chromium: everyone in the firm can save theirs (a new password,
a website), and none of them can rename themselves."""

from __future__ import annotations

import asyncio
import secrets

from playwright.async_api import Browser, Dialog, Page

from .conftest import WpFirm
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


def answer_next_dialog(page: Page, accept: bool, seen: list[str]) -> None:
    async def answer(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", lambda d: asyncio.ensure_future(answer(d)))


async def chat_state(page: Page, site: WordPressSite, uid: int, login: str) -> str:
    """The Users list's "Firm chat" cell for one person (found by a search: the list pages)."""
    await page.goto(f"{site.url}/wp-admin/users.php?s={login}")
    return await page.locator(f"#user-{uid} td.column-firm_chat").inner_text()


async def test_people_screens(wp: WpFirm, chromium_browser: Browser) -> None:
    """The administrator's side: fields shown for the roles they apply to, a suspension asked
    first (naming who takes over) and reported, the Users list telling pending, departed and
    erased apart, and erasure asked first."""
    site = wp.site
    partner = await wp.person("pam", "firm_partner")
    associate = await wp.person("ada", "firm_associate", firm_supervisor=partner)
    client = await wp.person("cy", "firm_client", firm_attorneys=[partner])
    await wp.wait_bridge("person", associate)
    await wp.wait_bridge("person", client)
    async with logged_in(chromium_browser, site, "admin", site.admin_password, "people") as (
        page,
        _,
    ):
        # Fields for the roles they apply to, following the role select.
        await page.goto(f"{site.url}/wp-admin/user-edit.php?user_id={associate}")
        supervisor = page.get_by_label("Supervising partner", exact=True)
        attorneys = page.get_by_label("Assigned attorneys", exact=True)
        assert await supervisor.is_visible() and not await attorneys.is_visible()
        await page.locator("#role").select_option("firm_client")
        assert await attorneys.is_visible() and not await supervisor.is_visible()
        assert "hold Ctrl" in await page.locator("#firm_attorneys-description").inner_text()
        await page.locator("#role").select_option("firm_associate")
        await assert_accessible(page, "#your-profile")
        await page.goto(f"{site.url}/wp-admin/user-edit.php?user_id={client}")
        assert await page.get_by_label("Assigned attorneys", exact=True).is_visible()
        assert not await page.get_by_label("Supervising partner", exact=True).is_visible()

        assert (await chat_state(page, site, associate, wp.login("ada"))).endswith("active")

        # A suspension is asked first, naming who takes over; "Cancel" saves nothing.
        await page.goto(f"{site.url}/wp-admin/user-edit.php?user_id={associate}")
        seen: list[str] = []
        await page.get_by_label("Suspended (departed)").check()
        answer_next_dialog(page, False, seen)
        await page.locator("#submit").click()
        await page.wait_for_timeout(300)
        assert seen and "Suspend Ada?" in seen[0] and "Pam" in seen[0], seen
        suspended = f"return (bool) get_user_meta({associate}, 'firm_suspended', true);"
        assert await site.php(suspended) is False
        answer_next_dialog(page, True, seen)
        async with page.expect_navigation():
            await page.locator("#submit").click()
        report = await page.locator(".firm-bridge-suspended").inner_text()
        assert "Ada is suspended" in report and "passed to Pam" in report, report
        assert await site.php(suspended) is True
        await wp.wait_bridge("person", associate, active=False)
        assert (await chat_state(page, site, associate, wp.login("ada"))).endswith("departed")

        # While the bridge is down, a new person is pending.
        await wp.bp.stop()
        try:
            newcomer = await wp.person("neo", "firm_client", firm_attorneys=[partner])
            assert "pending" in await chat_state(page, site, newcomer, wp.login("neo"))
        finally:
            await wp.bp.start()

        # Erasure through core's tool is asked first; then the list says "erased".
        email = f"{wp.login('cy')}@example.com"
        await page.goto(site.url + "/wp-admin/erase-personal-data.php")
        await page.fill("#username_or_email_for_privacy_request", email)
        await page.uncheck("#send_confirmation_email")
        async with page.expect_navigation():
            await page.click("#submit")
        row = page.locator("tr", has_text=email)
        await row.hover()
        answer_next_dialog(page, False, seen)
        await row.get_by_role("button", name="Erase personal data", exact=True).click()
        await page.wait_for_timeout(300)
        assert "closed for good" in seen[-1], seen
        erased = f"return (bool) get_user_meta({client}, '_firm_bridge_erased', true);"
        assert await site.php(erased) is False
        answer_next_dialog(page, True, seen)
        await row.get_by_role("button", name="Erase personal data", exact=True).click()
        await row.locator(".remove-personal-data-success:not(.hidden)").wait_for()
        assert await site.php(erased) is True
        await wp.wait_bridge("person", client, active=False)
        assert "erased" in await chat_state(page, site, client, wp.login("cy"))
