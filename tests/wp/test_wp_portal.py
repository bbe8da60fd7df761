"""The portal's chat mount point ([firm_chat] and its block) and the privacy tools."""

from __future__ import annotations

import html
import json
import re
import secrets

import aiohttp
from conftest import SECRET

from .conftest import WpFirm

SCRIPT = "<script>alert(1)</script>"


async def page_with(wp: WpFirm, content: str) -> str:
    status, data = await wp.site.rest(
        "POST", "/wp/v2/pages", {"title": f"Chat {wp.tag}", "content": content, "status": "publish"}
    )
    assert status == 201, data
    return data["link"]


def mount(page: str) -> dict[str, str]:
    tag = re.search(r'<div class="firm-chat" id="firm-chat-[^"]*"([^>]*)>', page)
    assert tag, page[-3000:]
    return {k: html.unescape(v) for k, v in re.findall(r'(data-[a-z-]+)="([^"]*)"', tag.group(1))}


async def session(
    browser: aiohttp.ClientSession, data: dict[str, str], nonce: str | None = None
) -> tuple[int, dict, str]:
    """The widget's call for a login token: POST with the person's cookie and the REST nonce."""
    given = data["data-rest-nonce"] if nonce is None else nonce
    headers = {"X-WP-Nonce": given} if given else {}
    async with browser.post(data["data-session-url"], headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Cache-Control", "")


async def test_chat_mount_point_and_session(wp: WpFirm) -> None:
    site, hs = wp.site, wp.hs
    partner = await wp.person("pam", "firm_partner")
    password = secrets.token_urlsafe(16)
    client = await site.create_user(
        wp.login("cid"), "firm_client", name="Cid", password=password, firm_attorneys=[partner]
    )
    matter = await site.create_matter(
        f"{SCRIPT} Cid's case",
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
    )
    await wp.wait_bridge("matter", matter)
    cid = (await wp.wait_bridge("person", client))["user_id"]
    shortcode_page = await page_with(wp, "<p>Talk to us</p>\n[firm_chat]")
    block_page = await page_with(wp, "<!-- wp:firm-bridge/chat /-->")

    # A visitor who is not logged in is asked to log in, and gets no session.
    async with aiohttp.ClientSession() as anon:
        async with anon.get(shortcode_page) as r:
            page = await r.text()
        assert r.status == 200 and "firm-chat--login" in page
        assert "wp-login.php?redirect_to=" in page and "data-session-url" not in page
        url = site.url + "/wp-json/firm-bridge/v1/chat-session"
        async with anon.post(url) as r:
            assert r.status == 401 and (await r.json())["code"] == "firm_chat_login"

    browser = await site.browser(wp.login("cid"), password)
    try:
        for url in (shortcode_page, block_page):
            async with browser.get(url) as r:
                page = await r.text()
                assert r.status == 200
                assert "no-store" in r.headers.get("Cache-Control", "")
            data = mount(page)
            matters = json.loads(data["data-matters"])
            assert [(m["id"], m["number"], m["title"]) for m in matters] == [
                (matter, wp.number(1), f"{SCRIPT} Cid's case")
            ]
            # The stored title is text in the page, never markup; no secret or token is in it.
            assert SCRIPT not in page and SECRET not in page and "login_token" not in page
            # The widget asks for a session: a single-use token, sent with no-store.
            status, got, cache = await session(browser, data)
            assert status == 200, got
            assert "no-store" in cache
            # The clients' address (the media gateway), never Synapse's own.
            assert got["user_id"] == cid and got["homeserver"] == hs.public_url
            assert got["expires_in_ms"] > 0 and got["login_token"]
            async with aiohttp.ClientSession() as s:
                body = {"type": "m.login.token", "token": got["login_token"]}
                async with s.post(hs.url + "/_matrix/client/v3/login", json=body) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["user_id"] == cid
                async with s.post(hs.url + "/_matrix/client/v3/login", json=body) as r:
                    assert r.status == 403
        # Without the REST nonce (another site posting with the person's cookie): no session.
        status, got, _ = await session(browser, data, nonce="")
        assert status == 401 and got["code"] == "firm_chat_login", got
        status, got, _ = await session(browser, data, nonce="0123456789")
        assert status == 403 and got["code"] == "rest_cookie_invalid_nonce", got
    finally:
        await browser.close()

    # A departed person is told their access has ended, and gets no token.
    await site.update_user(client, meta={"firm_suspended": True})
    await wp.wait_bridge("person", client, active=False)
    browser = await site.browser(wp.login("cid"), password)
    try:
        async with browser.get(shortcode_page) as r:
            page = await r.text()
        assert "firm-chat--ended" in page and "data-session-url" not in page
        # Asked anyway, with a valid nonce of this session: refused, no token.
        async with browser.get(site.url + "/wp-admin/admin-ajax.php?action=rest-nonce") as r:
            nonce = await r.text()
            assert r.status == 200 and nonce and nonce != "0", nonce
        status, got, _ = await session(browser, data, nonce=nonce)
        assert status == 403 and got["code"] == "firm_chat_ended", got
        assert "login_token" not in got
    finally:
        await browser.close()


async def test_privacy_export_and_erasure(wp: WpFirm) -> None:
    site, hs = wp.site, wp.hs
    partner = await wp.person("pete", "firm_partner")
    client = await wp.person("erin", "firm_client", firm_attorneys=[partner])
    matter = await site.create_matter(
        "Erin's file",
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
    )
    m = await wp.wait_bridge("matter", matter)
    erin = (await wp.wait_bridge("person", client))["user_id"]
    assert erin in await hs.joined(m["room_id"])
    email = f"{wp.login('erin')}@example.com"

    exported = await site.php(
        "$e = apply_filters('wp_privacy_personal_data_exporters', []);"
        f" return call_user_func($e['firm-bridge']['callback'], '{email}', 1);"
    )
    assert exported["done"] is True
    items = {d["name"]: d["value"] for d in exported["data"][0]["data"]}
    assert items["Chat account"] == erin
    assert items["Chat access"] == "active" and items["Firm role"] == "client"
    assert wp.number(1) in items["Matter rooms"]

    erased = await site.php(
        "$e = apply_filters('wp_privacy_personal_data_erasers', []);"
        f" return call_user_func($e['firm-bridge']['callback'], '{email}', 1);"
    )
    assert erased["items_removed"] is True and erin in erased["messages"][0]
    gone = await wp.wait_bridge("person", client, active=False)
    assert gone["display_name"] == f"Former member {client}"
    m = await wp.wait_bridge("matter", matter)
    assert erin not in await hs.joined(m["room_id"])
    # Nobody can sign in to chat as the erased person any more.
    status, data = await wp.api.request("POST", f"/_firm/v1/people/{client}/login-token")
    assert status == 403 and data["errcode"] == "FIRM_DEPARTED"


async def test_rooms_route_answers_with_the_evaluator(wp: WpFirm) -> None:
    """GET /_firm/v1/people/{id}/rooms: signed, and the matters whose room the role table puts
    the person in; the portal lists nothing (and says so) while the bridge cannot be asked."""
    site = wp.site
    partner = await wp.person("rob", "firm_partner")
    password = secrets.token_urlsafe(16)
    paralegal = await site.create_user(
        wp.login("ria"), "firm_paralegal", name="Ria", password=password, firm_attorneys=[partner]
    )
    client = await wp.person("rex", "firm_client", firm_attorneys=[partner])
    privileged_title = "Rex v. State (privileged)"
    matter = await site.create_matter(
        privileged_title,
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
        firm_matter_paralegals=[paralegal],
        firm_matter_privileged=True,
    )
    await wp.wait_bridge("matter", matter)

    status, data = await wp.api.request("GET", f"/_firm/v1/people/{partner}/rooms")
    assert status == 200, data
    assert [(m["wp_id"], m["title"], m["status"]) for m in data["matters"]] == [
        (matter, privileged_title, "open")
    ]
    assert data["matters"][0]["room_id"].startswith("!")
    status, data = await wp.api.request("GET", f"/_firm/v1/people/{paralegal}/rooms")
    assert status == 200 and data["matters"] == [], data
    status, data = await wp.api.request("GET", "/_firm/v1/people/999999/rooms")
    assert status == 404 and data["errcode"] == "FIRM_NOT_FOUND", data
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{wp.bp.url}/_firm/v1/people/{partner}/rooms") as r,
    ):
        assert r.status == 401 and (await r.json())["errcode"] == "FIRM_UNAUTHORIZED"

    # The bridge is down: the partner's portal names no matter, and says why.
    link = await page_with(wp, "[firm_chat]")
    await wp.bp.stop()
    partner_password = secrets.token_urlsafe(16)
    await site.update_user(partner, password=partner_password)
    try:
        browser = await site.browser(wp.login("rob"), partner_password)
        try:
            async with browser.get(link) as r:
                page = await r.text()
        finally:
            await browser.close()
        assert privileged_title not in page and "cannot be listed right now" in page
        assert json.loads(mount(page)["data-matters"]) == []
    finally:
        await wp.bp.start()
