"""The portal page in Debian's Chromium, for each role: it names exactly the matters whose room
the role table puts the person in (the bridge's evaluator), and tells the others what they can
do there.

The widget's files are answered empty: what is checked is what the plugin puts in the page (the
list, the widget's `data-matters`, the notes), whatever the widget then draws."""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote

from browser import submit_wp_login
from playwright.async_api import Browser

from .conftest import WpFirm
from .wp_browser import assert_accessible, logged_in
from .wp_harness import WordPressSite

PRIVILEGED_TITLE = "Acme merger (privileged strategy)"


async def test_portal_lists_the_rooms_each_person_is_in(
    wp: WpFirm, chromium_browser: Browser
) -> None:
    site = wp.site
    passwords: dict[str, str] = {}

    async def person(name: str, role: str, **meta: object) -> int:
        passwords[name] = secrets.token_urlsafe(16)
        return await site.create_user(
            wp.login(name), role, name=name.title(), password=passwords[name], **meta
        )

    partner = await person("pat", "firm_partner")
    associate = await person("abe", "firm_associate", firm_supervisor=partner)
    paralegal = await person("lou", "firm_paralegal", firm_attorneys=[partner])
    acme = await person("ann", "firm_client", firm_attorneys=[partner])
    lessee = await person("lee", "firm_client", firm_attorneys=[partner])
    await person("sue", "firm_assistant")
    privileged = await site.create_matter(
        PRIVILEGED_TITLE,
        wp.number(1),
        firm_matter_clients=[acme],
        firm_matter_responsible_partner=partner,
        firm_matter_associates=[associate],
        firm_matter_paralegals=[paralegal],
        firm_matter_privileged=True,
    )
    lease = await site.create_matter(
        "Lease review",
        wp.number(2),
        firm_matter_clients=[lessee],
        firm_matter_responsible_partner=partner,
        firm_matter_paralegals=[paralegal],
    )
    await wp.wait_bridge("matter", privileged)
    await wp.wait_bridge("matter", lease)
    status, data = await site.rest(
        "POST",
        "/wp/v2/pages",
        {"title": f"Chat {wp.tag}", "content": "[firm_chat]", "status": "publish"},
    )
    assert status == 201, data
    portal = data["link"]

    expected = {
        "pat": [privileged, lease],
        "abe": [privileged],
        # Assigned to both, but the role table keeps paralegals out of privileged rooms.
        "lou": [lease],
        "ann": [privileged],
        "lee": [lease],
        "sue": [],
    }
    for name, matters in expected.items():
        async with logged_in(
            chromium_browser,
            site,
            wp.login(name),
            passwords[name],
            f"portal-{name}",
            widget=False,
        ) as (page, _):
            response = await page.goto(portal)
            assert response is not None and response.status == 200
            served = await page.content()
            mount = page.locator("div.firm-chat[data-matters]")
            listed = json.loads(await mount.get_attribute("data-matters") or "null")
            assert [m["id"] for m in listed] == matters, (name, listed)
            items = await page.locator(".firm-chat__matters li").all_inner_texts()
            assert len(items) == len(matters), (name, items)
            if privileged not in matters:
                # Not its number, not its title, anywhere in the page.
                assert PRIVILEGED_TITLE not in served and wp.number(1) not in served, name
            if not matters:
                note = await page.locator(".firm-chat__note").inner_text()
                assert "Legal assistants" in note and "appointments" in note, note
            await assert_accessible(page, ".firm-chat, .firm-chat__note")

    # A matter made privileged later leaves the paralegal's list with the room.
    await site.update_matter(lease, meta={"firm_matter_privileged": True})
    await wp.wait_bridge("matter", lease, privileged=True)
    async with logged_in(
        chromium_browser,
        site,
        wp.login("lou"),
        passwords["lou"],
        "portal-lou-after",
        widget=False,
    ) as (page, _):
        await page.goto(portal)
        listed = json.loads(
            await page.locator("div.firm-chat[data-matters]").get_attribute("data-matters") or ""
        )
        assert listed == []
        assert "not in any matter" in await page.locator(".firm-chat__note").inner_text()


UNREAD_FETCH = """async () => {
    const el = document.getElementById('firm-bridge-unread');
    const r = await fetch(el.dataset.url, {
        credentials: 'same-origin', headers: {'X-WP-Nonce': el.dataset.nonce}});
    return {status: r.status, body: await r.json()};
}"""


async def test_people_land_on_the_chat_page_after_login(
    site: WordPressSite, chromium_browser: Browser
) -> None:
    status, data = await site.rest(
        "POST",
        "/wp/v2/pages",
        {
            "title": f"Secure chat {secrets.token_hex(3)}",
            "content": "[firm_chat]",
            "status": "publish",
        },
    )
    assert status == 201, data
    chat, chat_url = data["id"], data["link"]
    status, data = await site.rest(
        "POST", "/wp/v2/pages", {"title": "Fees", "content": "Our fees", "status": "publish"}
    )
    other_url = data["link"]
    await site.php(f"update_option('firm_bridge_chat_page', {chat}); return true;")
    try:
        for role, lands in (
            ("firm_client", chat_url),
            ("firm_paralegal", chat_url),
            ("firm_assistant", chat_url),
            # Partners manage matters in wp-admin: WordPress's own destination.
            ("firm_partner", site.url + "/wp-admin/profile.php"),
        ):
            login, password = f"l{secrets.token_hex(4)}", secrets.token_urlsafe(16)
            await site.create_user(login, role, password=password)
            async with logged_in(
                chromium_browser, site, login, password, f"landing-{role}", widget=False
            ) as (page, _):
                assert page.url == lands, (role, page.url)
                if role == "firm_client":
                    # No bridge answers this site: the badge's count is unknown, said with a
                    # 200 and nulls, so no visitor's console shows an error every minute.
                    assert await page.evaluate(UNREAD_FETCH) == {
                        "status": 200,
                        "body": {"unread": None, "rooms": None},
                    }
                # A link the person followed keeps its destination.
                await page.context.clear_cookies()
                await submit_wp_login(
                    page, f"{site.url}/wp-login.php?redirect_to={quote(other_url)}", login, password
                )
                assert page.url == other_url, (role, page.url)
    finally:
        await site.php("update_option('firm_bridge_chat_page', 0); return true;")
