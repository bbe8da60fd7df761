"""Starting a conversation from the widget: it offers only the people the role table lets the
person talk to (the bridge's answer, relayed by WordPress for the logged-in person), the room is
encrypted and direct (m.direct), the attorney reads it; and the homeserver refuses a raw attempt
to reach anyone outside the list."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import ClientSession
from browser import artifacts_on_failure
from playwright.async_api import Browser, Page, expect

from .conftest import Portal, assert_clean, keep_recovery_key


async def _hs(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with (
        ClientSession() as s,
        s.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json(content_type=None)


async def _client_token(page: Page, hs_url: str) -> str:
    """The client's own access token: a login token from the portal (cookie and nonce, as the
    widget asks), then m.login.token, a second device of the same person."""
    session = await page.evaluate(
        """async () => {
            const m = document.querySelector('.firm-chat[data-session-url]');
            const r = await fetch(m.dataset.sessionUrl, {method: 'POST', credentials: 'same-origin',
                headers: {'X-WP-Nonce': m.dataset.restNonce}});
            return await r.json();
        }"""
    )
    async with (
        ClientSession() as s,
        s.post(
            f"{hs_url}/_matrix/client/v3/login",
            json={"type": "m.login.token", "token": session["login_token"]},
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return str((await r.json())["access_token"])


async def test_new_conversation_offers_only_permitted_people(
    portal: Portal, chromium_browser: Browser
) -> None:
    wp = portal.wp
    # Another partner and another client: the role table lets the client talk to neither
    # (clients talk to their assigned attorneys only; Ann has no matter or client in common).
    ann = await wp.person("ann", "firm_partner")
    zed = await wp.site.create_user(wp.login("zed"), "firm_client", name="Zed")
    ann_id = (await wp.wait_bridge("person", ann))["user_id"]
    zed_id = (await wp.wait_bridge("person", zed))["user_id"]
    hs_url = wp.hs.url
    as_token = wp.hs.registration.as_token

    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-contacts"):
            await keep_recovery_key(page)
            await expect(page.get_by_role("button", name=portal.label)).to_be_visible()

            # WordPress relays the bridge's list for the logged-in person only.
            listed = await page.evaluate(
                """async () => {
                    const m = document.querySelector('.firm-chat[data-rest-url]');
                    const r = await fetch(m.dataset.restUrl + 'chat-contacts',
                        {credentials: 'same-origin', headers: {'X-WP-Nonce': m.dataset.restNonce}});
                    return [r.status, await r.json()];
                }"""
            )
            assert listed[0] == 200, listed
            assert [c["user_id"] for c in listed[1]["contacts"]] == [portal.partner_id], listed

            await page.get_by_role("button", name="New conversation").click()
            person = page.get_by_label("Write to")
            await expect(person).to_be_visible()
            options = await person.locator("option").all_inner_texts()
            assert options == ["Pam (Partner)"], options
            await page.get_by_role("button", name="Start conversation").click()

            # The new room opens, its button current in the list.
            current = page.locator(".fc-room-button[aria-current='true']")
            await expect(current).not_to_have_attribute("data-room-id", portal.room_id)
            room_id = await current.get_attribute("data-room-id")
            assert room_id and room_id != portal.room_id

            # The attorney is invited, joins, and writes; the widget decrypts it.
            attorney = portal.attorney
            await attorney.client.join_room(room_id)
            encryption = await attorney.client.get_state_event(room_id, "m.room.encryption")  # type: ignore[arg-type]
            assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
            await attorney.send_text(room_id, "hello from your attorney")
            await expect(page.locator(".fc-timeline")).to_contain_text("hello from your attorney")
            await page.get_by_role("textbox", name="Message").fill("hello back, privately")
            await page.get_by_role("button", name="Send").click()
            assert await attorney.wait_for_text(room_id, "hello back, privately", timeout=30)

            # Direct: the client's m.direct names the room with the attorney.
            status, direct = await _hs(
                "GET",
                f"{hs_url}/_matrix/client/v3/user/{quote(portal.client_id)}/account_data/m.direct"
                f"?user_id={quote(portal.client_id)}",
                as_token,
            )
            assert status == 200 and room_id in direct.get(portal.partner_id, []), direct

            # Outside the list, the homeserver refuses whatever the client sends it.
            token = await _client_token(page, portal.clients_url)
            for other in (ann_id, zed_id):
                status, body = await _hs(
                    "POST",
                    f"{hs_url}/_matrix/client/v3/createRoom",
                    token,
                    {"invite": [other], "is_direct": True, "preset": "trusted_private_chat"},
                )
                assert status == 403, (other, status, body)
                status, body = await _hs(
                    "POST",
                    f"{hs_url}/_matrix/client/v3/rooms/{quote(room_id)}/invite",
                    token,
                    {"user_id": other},
                )
                assert status == 403, (other, status, body)
            await assert_clean(watch)
    finally:
        await context.close()
