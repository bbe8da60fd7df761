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


async def test_chat_mount_point_with_a_login_token(wp: WpFirm) -> None:
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

    # A visitor who is not logged in is asked to log in.
    async with aiohttp.ClientSession() as anon, anon.get(shortcode_page) as r:
        page = await r.text()
    assert r.status == 200 and "firm-chat--login" in page and "wp-login.php?redirect_to=" in page
    assert "data-login-token" not in page

    browser = await site.browser(wp.login("cid"), password)
    try:
        for url in (shortcode_page, block_page):
            async with browser.get(url) as r:
                page = await r.text()
                assert r.status == 200
                assert "no-store" in r.headers.get("Cache-Control", "")
            data = mount(page)
            assert data["data-user-id"] == cid
            assert data["data-homeserver"] == hs.url
            assert int(data["data-expires-in-ms"]) > 0 and data["data-login-token"]
            matters = json.loads(data["data-matters"])
            assert [(m["id"], m["number"], m["title"]) for m in matters] == [
                (matter, wp.number(1), f"{SCRIPT} Cid's case")
            ]
            # The stored title is text in the page, never markup; no secret is ever in it.
            assert SCRIPT not in page and SECRET not in page
            # The token logs the person in, once.
            async with aiohttp.ClientSession() as s:
                body = {"type": "m.login.token", "token": data["data-login-token"]}
                async with s.post(hs.url + "/_matrix/client/v3/login", json=body) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["user_id"] == cid
                async with s.post(hs.url + "/_matrix/client/v3/login", json=body) as r:
                    assert r.status == 403
    finally:
        await browser.close()

    # A departed person is told their access has ended, and gets no token.
    await site.update_user(client, meta={"firm_suspended": True})
    await wp.wait_bridge("person", client, active=False)
    browser = await site.browser(wp.login("cid"), password)
    try:
        async with browser.get(shortcode_page) as r:
            page = await r.text()
        assert "firm-chat--ended" in page and "data-login-token" not in page
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
