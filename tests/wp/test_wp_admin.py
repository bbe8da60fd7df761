"""wp-admin: forms need a nonce and the capability, REST needs a user who may, stored text is
shown as text, the Restrictions screen sends the role table, the Outbox screen shows failures,
and "Resync everything" rebuilds a bridge that lost its database."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from conftest import SECRET, make_config

from bridge.devtools.client import ProvisioningClient

from .conftest import BridgeProcess, WpFirm
from .wp_harness import WordPressSite, form_fields, php_literal

SCRIPT = '<script>alert("pwned")</script>'


async def user_with_password(site: WordPressSite, role: str) -> tuple[int, str, str]:
    login = f"u{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    uid = await site.create_user(login, role, password=password)
    return uid, login, password


async def app_password(site: WordPressSite, uid: int) -> str:
    return await site.php(
        f"return WP_Application_Passwords::create_new_application_password({uid},"
        " ['name' => 'test'])[0];"
    )


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as r:
        return r.status, await r.text()


async def post(session: aiohttp.ClientSession, url: str, data: dict) -> tuple[int, str, str]:
    async with session.post(url, data=data, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


async def test_settings_form_needs_capability_and_nonce(site: WordPressSite) -> None:
    settings = site.url + "/wp-admin/admin.php?page=firm-bridge-settings"
    options = site.url + "/wp-admin/options.php"
    url_before = await site.php("return get_option('firm_bridge_url');")
    admin = await site.browser("admin", site.admin_password)
    try:
        status, page = await get(admin, settings)
        assert status == 200 and "Firm Bridge: Settings" in page
        # The secret is set and never printed back.
        assert SECRET not in page and html.escape(SECRET) not in page
        fields = form_fields(page, "options.php")
        assert fields["option_page"] == "firm_bridge" and fields["_wpnonce"]
        change = {**fields, "firm_bridge_url": "http://127.0.0.1:9/x", "firm_bridge_homeserver": ""}

        for nonce in (None, "0123456789"):
            data = {k: v for k, v in change.items() if k != "_wpnonce"}
            if nonce:
                data["_wpnonce"] = nonce
            status, body, _ = await post(admin, options, data)
            assert status == 403, (nonce, status)
            assert await site.php("return get_option('firm_bridge_url');") == url_before

        # A too-short secret is refused, naming why; the other fields are saved as typed.
        status, _, location = await post(admin, options, {**change, "firm_bridge_secret": "short"})
        assert status == 302 and "page=firm-bridge-settings" in location, location
        assert await site.php("return Firm_Bridge_Settings::secret();") == SECRET
        assert await site.php("return get_option('firm_bridge_url');") == "http://127.0.0.1:9/x"
        status, page = await get(admin, urljoin(site.url, location))
        assert "must be at least 32 characters" in page and "notice-error" in page
        assert "Settings saved." not in page

        await site.php(f"update_option('firm_bridge_url', '{url_before}'); return true;")
        status, _, location = await post(admin, options, change)
        assert status == 302
        assert await site.php("return get_option('firm_bridge_url');") == "http://127.0.0.1:9/x"
        # A blank secret field keeps the secret.
        assert await site.php("return Firm_Bridge_Settings::secret();") == SECRET
        status, page = await get(admin, urljoin(site.url, location))
        assert "Settings saved." in page and SECRET not in page
    finally:
        await admin.close()

    # A client, even with the form's fields, is refused before the nonce is looked at.
    _, login, password = await user_with_password(site, "firm_client")
    client = await site.browser(login, password)
    try:
        status, _ = await get(client, settings)
        assert status == 403
        status, body, _ = await post(client, options, change)
        assert status == 403, status
        for action in ("firm_bridge_resync", "firm_bridge_save_policy", "firm_bridge_deliver"):
            status, body, _ = await post(
                client, site.url + "/wp-admin/admin-post.php", {**change, "action": action}
            )
            assert status == 403 and "You may not change the Firm Bridge" in body, action
    finally:
        await client.close()
    assert await site.php("return get_option('firm_bridge_url');") == "http://127.0.0.1:9/x"


async def test_rest_refuses_anonymous_and_unauthorized_callers(site: WordPressSite) -> None:
    partner, partner_login, _ = await user_with_password(site, "firm_partner")
    client, client_login, _ = await user_with_password(site, "firm_client")
    # Partners may make matters.
    status, data = await site.rest(
        "POST",
        "/wp/v2/firm_matters",
        {
            "title": "Confidential",
            "status": "publish",
            "meta": {"firm_matter_clients": [client], "firm_matter_responsible_partner": partner},
        },
        auth=site.basic(partner_login, await app_password(site, partner)),
    )
    assert status == 201, data
    matter = data["id"]
    client_auth = site.basic(client_login, await app_password(site, client))

    for auth in (None, client_auth):
        expected = 401 if auth is None else 403
        for method, route, body in (
            ("GET", "/wp/v2/firm_matters", None),
            ("GET", f"/wp/v2/firm_matters/{matter}", None),
            ("POST", "/wp/v2/firm_matters", {"title": "x", "status": "publish"}),
            ("POST", f"/wp/v2/firm_matters/{matter}", {"title": "x"}),
            ("GET", "/firm-bridge/v1/outbox", None),
            ("POST", "/firm-bridge/v1/resync", None),
            ("POST", f"/wp/v2/users/{partner}", {"meta": {"firm_suspended": True}}),
        ):
            status, data = await site.rest(method, route, body, auth=auth)
            assert status == expected, (auth is None, method, route, status, data)

    # A partner may edit matters; the matter is untouched by the refused calls.
    title = await site.php(f"return get_post({matter})->post_title;")
    assert title == "Confidential"
    suspended = await site.php(f"return get_user_meta({partner}, 'firm_suspended', true);")
    assert not suspended
    # Authors of matters are not listed as public authors, and profile fields never show.
    status, users = await site.rest("GET", "/wp/v2/users", auth=None)
    assert status == 200
    assert all(u["id"] != partner for u in users)
    assert all("firm_supervisor" not in (u.get("meta") or {}) for u in users)
    # Nor one at a time, though the published matter is theirs.
    status, one = await site.rest("GET", f"/wp/v2/users/{partner}", auth=None)
    assert status == 401, one


async def test_settings_warn_of_plain_http_to_another_machine(site: WordPressSite) -> None:
    settings = site.url + "/wp-admin/admin.php?page=firm-bridge-settings"
    before = await site.php("return get_option('firm_bridge_url');")
    admin = await site.browser("admin", site.admin_password)
    try:
        for url, warned in (
            ("http://bridge.firm.example:29320", True),
            ("https://bridge.firm.example", False),
            ("http://127.0.0.1:29320", False),
            ("http://[::1]:29320", False),
        ):
            await site.php(f"update_option('firm_bridge_url', '{url}'); return true;")
            status, page = await get(admin, settings)
            assert status == 200
            assert ("firm-bridge-plain-http" in page) is warned, url
    finally:
        await site.php(f"update_option('firm_bridge_url', '{before}'); return true;")
        await admin.close()


async def test_script_tag_in_a_matter_title_is_shown_as_text(site: WordPressSite) -> None:
    # Numbers are stored as plain text (tags stripped); quotes and ampersands stay.
    number = f'N&"-{secrets.token_hex(3)}'
    client, _, _ = await user_with_password(site, "firm_client")
    matter = await site.create_matter(f"{SCRIPT} Doe", number, firm_matter_clients=[client])
    # Administrators may store raw HTML in titles (unfiltered_html): the worst case for output.
    assert await site.php(f"return get_post({matter})->post_title;") == f"{SCRIPT} Doe"
    rows = await site.outbox()
    assert any(
        r["object_id"] == matter and (r["body"] or {}).get("title") == f"{SCRIPT} Doe" for r in rows
    )
    admin = await site.browser("admin", site.admin_password)
    try:
        for path in (
            "/wp-admin/edit.php?post_type=firm_matter",
            f"/wp-admin/post.php?post={matter}&action=edit",
            "/wp-admin/admin.php?page=firm-bridge",
            f"/wp-admin/edit.php?post_type=firm_matter&s={SCRIPT}",
        ):
            status, page = await get(admin, site.url + path)
            assert status == 200, path
            assert SCRIPT not in page, path
            assert number not in page, path
        status, page = await get(admin, site.url + "/wp-admin/edit.php?post_type=firm_matter")
        assert "&lt;script&gt;alert(" in page and html.escape(number) in page
    finally:
        await admin.close()


async def test_list_filters_take_hostile_input_safely(site: WordPressSite) -> None:
    admin = await site.browser("admin", site.admin_password)
    try:
        for query in (
            "firm_partner=1%20OR%201%3D1",
            "firm_status=open'%20OR%20'1'%3D'1",
            "firm_privileged=yes&orderby=firm_number&order=desc",
            "firm_status=closed&firm_privileged=no",
        ):
            status, page = await get(
                admin, site.url + "/wp-admin/edit.php?post_type=firm_matter&" + query
            )
            assert status == 200, query
            assert "database error" not in page.lower(), query
    finally:
        await admin.close()


async def test_matter_and_profile_forms_in_wp_admin(wp: WpFirm) -> None:
    site = wp.site
    partner = await wp.person("fay", "firm_partner")
    assoc = await wp.person("fin", "firm_associate")
    client = await wp.person("flo", "firm_client")
    admin = await site.browser("admin", site.admin_password)
    try:
        # The profile form sets the supervising partner.
        status, page = await get(admin, f"{site.url}/wp-admin/user-edit.php?user_id={assoc}")
        assert status == 200 and "Supervising partner" in page
        fields = form_fields(page, "user-edit.php")
        assert fields["_firm_bridge_profile_nonce"]
        data = {**fields, "firm_supervisor": str(partner)}
        bad = {**data, "_firm_bridge_profile_nonce": "bad"}
        status, _, _ = await post(admin, site.url + "/wp-admin/user-edit.php", bad)
        assert status == 403
        assert (await site.php(f"return get_user_meta({assoc}, 'firm_supervisor', true);")) in (
            "",
            "0",
            0,
        )
        status, _, location = await post(admin, site.url + "/wp-admin/user-edit.php", data)
        assert status == 302 and "updated=1" in location
        await wp.wait_bridge("person", assoc, supervisor=partner)

        # A matter made with the classic edit form and its Matter box.
        status, page = await get(admin, site.url + "/wp-admin/post-new.php?post_type=firm_matter")
        assert status == 200
        fields = form_fields(page, "post.php")
        assert fields["_firm_bridge_matter_nonce"] and fields["post_ID"]
        matter = int(fields["post_ID"])
        data = {
            **fields,
            "post_title": "Flo's estate",
            "firm_matter_number": wp.number(1),
            "firm_matter_clients[]": str(client),
            "firm_matter_responsible_partner": str(partner),
            "firm_matter_associates[]": str(assoc),
            "firm_matter_status": "open",
            "publish": "Publish",
        }
        bad = {**data, "_firm_bridge_matter_nonce": "bad"}
        status, _, _ = await post(admin, site.url + "/wp-admin/post.php", bad)
        assert status == 403
        status, _, location = await post(admin, site.url + "/wp-admin/post.php", data)
        assert status == 302 and f"post={matter}" in location
        m = await wp.wait_bridge("matter", matter, title="Flo's estate")
        assert {(a["wp_id"], a["capacity"]) for a in m["assignments"]} == {
            (client, "client"),
            (partner, "responsible_partner"),
            (assoc, "associate"),
        }
        assert len(await wp.hs.joined(m["room_id"])) == 4
    finally:
        await admin.close()


async def test_outbox_screen_shows_refusals_and_resends_current_state(wp: WpFirm) -> None:
    site = wp.site
    partner = await wp.person("gil", "firm_partner")
    client = await wp.person("gus", "firm_client")
    before = await site.last_outbox_id()
    # No client: the bridge refuses the matter (400); the refusal is kept and shown, not retried.
    matter = await site.create_matter(
        "No client yet", wp.number(1), firm_matter_responsible_partner=partner
    )
    [row] = await site.wait_delivered(before)
    assert row["status"] == "failed" and row["last_status"] == 400
    assert "a matter needs at least one client" in row["last_error"]
    admin = await site.browser("admin", site.admin_password)
    try:
        status, page = await get(
            admin, site.url + "/wp-admin/admin.php?page=firm-bridge&status=failed"
        )
        assert status == 200 and "a matter needs at least one client" in page
        forms = re.findall(r"<form[^>]*admin-post\.php[^>]*>(.*?)</form>", page, re.S)
        resend = next(f for f in forms if "firm_bridge_resend" in f and f'value="{row["id"]}"' in f)
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', resend))
        status, _, location = await post(admin, site.url + "/wp-admin/admin-post.php", fields)
        assert status == 302 and "resent" in location
    finally:
        await admin.close()
    # The current state is sent again under a new request id; still no client, still refused.
    rows = await site.wait_delivered(before)
    assert [r["status"] for r in rows] == ["superseded", "failed"]
    assert rows[0]["request_id"] != rows[1]["request_id"]
    await site.update_matter(matter, meta={"firm_matter_clients": [client]})
    rows = await site.wait_delivered(before)
    assert [r["status"] for r in rows] == ["superseded", "failed", "delivered"]
    await wp.wait_bridge("matter", matter, title="No client yet")


async def test_restrictions_screen_sends_the_role_table(wp: WpFirm) -> None:
    site = wp.site
    partner = await wp.person("hal", "firm_partner")
    client = await wp.person("hub", "firm_client")
    matter = await site.create_matter(
        "Hub", wp.number(1), firm_matter_clients=[client], firm_matter_responsible_partner=partner
    )
    m = await wp.wait_bridge("matter", matter)
    hub = next(a["user_id"] for a in m["assignments"] if a["wp_id"] == client)
    page_url = site.url + "/wp-admin/admin.php?page=firm-bridge-restrictions"
    admin = await site.browser("admin", site.admin_password)
    try:
        _, page = await get(admin, page_url)
        load = dict(
            re.findall(
                r'name="([^"]+)" value="([^"]*)"', page.split("firm_bridge_load_policy")[1][:600]
            )
        )
        load["action"] = "firm_bridge_load_policy"
        status, _, location = await post(admin, site.url + "/wp-admin/admin-post.php", load)
        assert status == 302 and "policy-loaded" in location, location
        _, page = await get(admin, page_url)
        area = re.search(r'<textarea name="firm_bridge_policy"[^>]*>(.*?)</textarea>', page, re.S)
        assert area
        text = html.unescape(area.group(1))
        assert '"client"' in text and '"power_level": 10' in text
        fields = form_fields(page, "admin-post.php")
        assert fields["action"] == "firm_bridge_save_policy"

        before = await site.last_outbox_id()
        status, _, location = await post(
            admin,
            site.url + "/wp-admin/admin-post.php",
            {**fields, "firm_bridge_policy": "{not json"},
        )
        assert status == 302 and "policy-invalid" in location
        assert await site.last_outbox_id() == before
        _, page = await get(admin, page_url + "&firm_bridge_notice=policy-invalid")
        assert "not valid JSON" in page and "{not json" in html.unescape(page)

        changed = re.sub(r'("client":\s*\{[^}]*"power_level":\s*)10', r"\g<1>15", text, flags=re.S)
        assert changed != text
        status, _, location = await post(
            admin, site.url + "/wp-admin/admin-post.php", {**fields, "firm_bridge_policy": changed}
        )
        assert status == 302 and "policy-saved" in location
    finally:
        await admin.close()
    [row] = await site.wait_delivered(before)
    assert (row["method"], row["path"], row["status"], row["last_status"]) == (
        "PUT",
        "/_firm/v1/policy",
        "delivered",
        200,
    ), row
    status, data = await wp.api.request("GET", "/_firm/v1/policy")
    assert status == 200 and data["policy"]["roles"]["client"]["power_level"] == 15
    # The bridge re-checks every room against the new table; the client's level follows.
    deadline = time.monotonic() + 30
    while True:
        m = await wp.wait_bridge("matter", matter)
        levels = (await wp.hs.room_state(m["room_id"]))[("m.room.power_levels", "")]["users"]
        if levels.get(hub) == 15 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert levels[hub] == 15


async def test_resync_rebuilds_a_bridge_that_lost_its_database(wp: WpFirm, tmp_path: Path) -> None:
    site = wp.site
    partner = await wp.person("ida", "firm_partner")
    client = await wp.person("ivy", "firm_client", firm_attorneys=[partner])
    matter = await site.create_matter(
        "Ivy", wp.number(1), firm_matter_clients=[client], firm_matter_responsible_partner=partner
    )
    room = (await wp.wait_bridge("matter", matter))["room_id"]

    # The bridge comes back with an empty database.
    await wp.bp.stop()
    fresh = BridgeProcess(make_config(wp.hs, f"sqlite:{tmp_path / 'fresh.db'}", tmp_path), wp.hs)
    await fresh.start()
    api = ProvisioningClient(fresh.url, SECRET)
    try:
        status, _ = await api.get_matter(matter)
        assert status == 404
        before = await site.last_outbox_id()
        admin = await site.browser("admin", site.admin_password)
        try:
            _, page = await get(admin, site.url + "/wp-admin/admin.php?page=firm-bridge")
            forms = re.findall(r"<form[^>]*admin-post\.php[^>]*>(.*?)</form>", page, re.S)
            resync = dict(
                re.findall(
                    r'name="([^"]+)" value="([^"]*)"',
                    next(f for f in forms if "firm_bridge_resync" in f),
                )
            )
            status, _, location = await post(admin, site.url + "/wp-admin/admin-post.php", resync)
            assert status == 302 and "resync-queued" in location
        finally:
            await admin.close()
        rows = await site.wait_delivered(before, timeout=90)
        ours = [
            r
            for r in rows
            if (r["object_type"], r["object_id"])
            in {("person", partner), ("person", client), ("matter", matter)}
        ]
        assert [r["status"] for r in ours] == ["delivered"] * 3
        # People went before the matter that names them.
        assert ours[-1]["object_type"] == "matter"
        wp.api, old_api = api, wp.api
        try:
            m = await wp.wait_bridge("matter", matter)
        finally:
            wp.api = old_api
        # The room is found again by its alias, not made twice.
        assert m["room_id"] == room
        assert len(await wp.hs.joined(room)) == 3
    finally:
        await api.close()
        await fresh.stop()


async def test_people_cannot_rename_themselves(wp: WpFirm) -> None:
    """The name a person has in WordPress is the name everyone sees in chat: a client cannot
    take a partner's name on their profile page or through the REST API; the firm can. Everything
    else on the profile still saves (a locked name is kept, not an error)."""
    site = wp.site
    partner = await wp.person("pia", "firm_partner")
    password = secrets.token_urlsafe(16)
    client = await site.create_user(
        wp.login("cal"), "firm_client", name="Cal", password=password, firm_attorneys=[partner]
    )
    before = await wp.wait_bridge("person", client)
    names = (
        f"$u = get_userdata({client});"
        " return [$u->display_name, $u->first_name, $u->last_name, $u->nickname];"
    )
    names_before = await site.php(names)
    assert names_before[0] == "Cal", names_before
    browser = await site.browser(wp.login("cal"), password)
    new_password = secrets.token_urlsafe(16)
    try:
        # The profile screen, saved unchanged: WordPress says it was updated.
        status, page = await get(browser, site.url + "/wp-admin/profile.php")
        assert status == 200
        fields = form_fields(page, "profile.php")
        status, body, location = await post(browser, site.url + "/wp-admin/profile.php", fields)
        assert status == 302 and "updated=1" in location, (status, location, body[-2000:])
        # Renamed, with a new website and a new password: the rest is saved, the name is not.
        status, page = await get(browser, site.url + "/wp-admin/profile.php")
        fields = form_fields(page, "profile.php")
        fields.update(first_name="Pia", last_name="(Partner)", nickname="Pia", display_name="Pia")
        fields.update(url="https://cal.example", pass1=new_password, pass2=new_password)
        status, body, location = await post(browser, site.url + "/wp-admin/profile.php", fields)
        assert status == 302 and "updated=1" in location, (status, location, body[-2000:])
        # Even with the nickname left empty (the field is the firm's, not theirs to fill). A new
        # password started a new session: the form (and its nonce) is read again.
        status, page = await get(browser, site.url + "/wp-admin/profile.php")
        fields = form_fields(page, "profile.php")
        fields.update(nickname="", first_name="")
        status, body, location = await post(browser, site.url + "/wp-admin/profile.php", fields)
        assert status == 302 and "updated=1" in location, (status, location, body[-2000:])
        # The REST API, with the REST nonce of this session.
        async with browser.get(site.url + "/wp-admin/admin-ajax.php?action=rest-nonce") as r:
            nonce = await r.text()
        async with browser.post(
            site.url + "/wp-json/wp/v2/users/me",
            json={"name": "Pia (Partner)", "first_name": "Pia", "nickname": "Pia"},
            headers={"X-WP-Nonce": nonce},
        ) as r:
            assert r.status == 200, await r.text()
    finally:
        await browser.close()
    assert await site.php(names) == names_before
    assert await site.php(f"return get_userdata({client})->user_url;") == "https://cal.example"
    # The new password was saved with the rest.
    checked = await site.php(
        f"$u = get_userdata({client}); return [wp_check_password({php_literal(new_password)},"
        f" $u->user_pass, {client}), wp_check_password({php_literal(password)}, $u->user_pass,"
        f" {client})];"
    )
    assert checked == [True, False]
    after = await wp.wait_bridge("person", client)
    assert after["display_name"] == before["display_name"] == "Cal"
    # The firm renames people.
    await site.update_user(client, name="Calvin Reyes")
    await wp.wait_bridge("person", client, display_name="Calvin Reyes")
