"""The homeserver's login check: POST /wp-json/firm-bridge/v1/login-check, signed like the
provisioning API, answered from WordPress's own wp_authenticate()."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from conftest import SECRET

from bridge.web.signing import signed_headers
from bridge.wordpress import WordPress

from .wp_harness import WordPressSite

PATH = "/wp-json/firm-bridge/v1/login-check"


async def check(
    site: WordPressSite,
    body: dict | bytes,
    *,
    secret: str = SECRET,
    request_id: str | None = None,
    timestamp: int | None = None,
    path: str = PATH,
    signed_path: str | None = None,
    signed: bool = True,
) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        headers |= signed_headers(
            secret,
            "POST",
            signed_path or path,
            data,
            request_id or uuid.uuid4().hex,
            int(time.time()) if timestamp is None else timestamp,
        )
    pretty = path.startswith("/wp-json")
    route = path.removeprefix("/wp-json") if pretty else path.split("rest_route=", 1)[1]
    return await site.rest("POST", route, auth=None, headers=headers, data=data, pretty=pretty)


async def person(
    site: WordPressSite, role: str = "firm_client", **meta: Any
) -> tuple[int, str, str]:
    login = f"lc{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(14) + "é!"
    uid = await site.create_user(login, role, password=password, **meta)
    return uid, login, password


async def test_valid_invalid_unknown_and_deactivated(site: WordPressSite) -> None:
    uid, login, password = await person(site)
    status, data = await check(site, {"login": login, "password": password})
    assert (status, data) == (200, {"valid": True, "wp_id": uid, "login": login, "active": True})
    # Logging in with the e-mail address gives the login back.
    status, data = await check(site, {"login": f"{login}@example.com", "password": password})
    assert status == 200 and data["login"] == login and data["valid"] is True

    wrong = await check(site, {"login": login, "password": password + "x"})
    unknown = await check(site, {"login": f"nobody{secrets.token_hex(4)}", "password": password})
    # A wrong password and an unknown login cannot be told apart.
    assert wrong == unknown == (200, {"valid": False})

    await site.update_user(uid, meta={"firm_suspended": True})
    status, data = await check(site, {"login": login, "password": password})
    assert (status, data["valid"], data["active"]) == (200, True, False)

    # Someone with no firm role is not an active person of the firm.
    status, data = await check(site, {"login": "admin", "password": site.admin_password})
    assert (status, data["valid"], data["active"]) == (200, True, True)  # administrators are
    sub_password = secrets.token_urlsafe(12)
    sub = await site.create_user(f"sub{secrets.token_hex(3)}", "subscriber", password=sub_password)
    sub_login = await site.php(f"return get_userdata({sub})->user_login;")
    status, data = await check(site, {"login": sub_login, "password": sub_password})
    assert (status, data["valid"], data["active"]) == (200, True, False)


async def test_application_passwords_do_not_log_in_to_chat(site: WordPressSite) -> None:
    uid, login, _ = await person(site, "firm_partner")
    app = await site.php(
        f"return WP_Application_Passwords::create_new_application_password({uid}, ['name' => 'x'])[0];"
    )
    status, data = await check(site, {"login": login, "password": app})
    assert (status, data) == (200, {"valid": False})


async def test_unsigned_badly_signed_stale_and_replayed_calls_are_refused(
    site: WordPressSite,
) -> None:
    uid, login, password = await person(site)
    body = {"login": login, "password": password}
    status, data = await check(site, body, signed=False)
    assert status == 401 and data["code"] == "firm_bridge_unauthorized", data
    assert data["data"]["field"] == "X-Firm-Signature"
    status, data = await check(site, body, secret="another-secret-" + "x" * 32)
    assert status == 401 and data["data"]["field"] == "X-Firm-Signature"
    for skew in (-360, 360):
        status, data = await check(site, body, timestamp=int(time.time()) + skew)
        assert status == 401 and data["data"]["field"] == "X-Firm-Timestamp", skew
    # Signed for another path than the one it was sent to.
    status, data = await check(site, body, signed_path=PATH + "?x=1")
    assert status == 401
    status, data = await check(site, body, request_id="short")
    assert status == 401 and data["data"]["field"] == "X-Firm-Request-Id"

    rid = uuid.uuid4().hex
    status, data = await check(site, body, request_id=rid)
    assert status == 200 and data["valid"] is True
    status, data = await check(site, body, request_id=rid)
    assert status == 409 and data["code"] == "firm_bridge_replayed"
    # Refused requests consumed nothing: the same id with a right signature still works once.
    rid2 = uuid.uuid4().hex
    assert (await check(site, body, request_id=rid2, signed=True, secret="w" * 40))[0] == 401
    assert (await check(site, body, request_id=rid2))[0] == 200

    # A secret too short to be safe (set around the settings screen's check) is not believed,
    # even by a caller who knows it.
    short = "change" + "me"
    await site.php(f"update_option('firm_bridge_secret', '{short}', false); return true;")
    try:
        status, data = await check(site, body, secret=short)
        assert status == 401 and data["data"]["field"] == "X-Firm-Signature", data
    finally:
        await site.php(f"update_option('firm_bridge_secret', '{SECRET}', false); return true;")
    assert (await check(site, body))[0] == 200


async def test_plain_permalinks_path_is_what_is_signed(site: WordPressSite) -> None:
    _, login, password = await person(site)
    path = "/index.php?rest_route=/firm-bridge/v1/login-check"
    status, data = await check(site, {"login": login, "password": password}, path=path)
    assert status == 200 and data["valid"] is True


async def test_bad_bodies_are_refused_naming_the_field(site: WordPressSite) -> None:
    # WordPress's REST server refuses a JSON body that does not parse, before any route runs.
    status, data = await check(site, b"not json")
    assert status == 400 and data["code"] == "rest_invalid_json"
    for body, field in (
        (b"[1, 2]", "body"),
        (json.dumps({"login": "x"}).encode(), "password"),
        (json.dumps({"login": 5, "password": "x"}).encode(), "login"),
        (json.dumps({"login": "x" * 300, "password": "x"}).encode(), "login"),
    ):
        status, data = await check(site, body)
        assert status == 400 and data["data"]["field"] == field, (body[:30], data)


async def test_failed_attempts_are_rate_limited_per_account(site: WordPressSite) -> None:
    uid, login, password = await person(site)
    _, other, other_password = await person(site)
    # The same account typed many ways (WordPress cleans the login, or takes the e-mail
    # address): one counter, so ten wrong guesses in all, not ten per spelling.
    spellings = [login, login.upper(), f"<b>{login}</b>", f"{login}&x;", f"{login}@example.com"]
    for i in range(10):
        wrong = {"login": spellings[i % len(spellings)], "password": "wrong"}
        assert await check(site, wrong) == (200, {"valid": False})
    status, data = await check(site, {"login": login, "password": password})
    assert status == 429 and data["code"] == "firm_bridge_rate_limited"
    assert 0 < data["data"]["retry_after_ms"] <= 300_000
    for spelling in spellings:
        assert (await check(site, {"login": spelling, "password": "wrong"}))[0] == 429, spelling
    # Another login is not affected.
    status, data = await check(site, {"login": other, "password": other_password})
    assert status == 200 and data["valid"] is True
    # When the window has passed, the login works again.
    await site.php(f"delete_transient('firm_bridge_lc_u{uid}'); return true;")
    assert (await check(site, {"login": login, "password": password}))[1]["valid"] is True


async def test_the_password_is_not_stored_or_logged(site: WordPressSite) -> None:
    _, login, password = await person(site)
    await check(site, {"login": login, "password": password})
    await check(site, {"login": login, "password": password + "-wrong"})
    dump = await site.php(
        "global $wpdb; $out = '';"
        " foreach ([$wpdb->options, $wpdb->usermeta, $wpdb->prefix . 'firm_bridge_outbox',"
        " $wpdb->prefix . 'firm_bridge_seen'] as $t) {"
        '  foreach ($wpdb->get_results($wpdb->prepare("SELECT * FROM {$t} WHERE %d = 1", 1), ARRAY_A) as $r) {'
        "   $out .= implode('|', $r) . \"\\n\"; } }"
        " return $out;"
    )
    assert password not in dump
    log = site.log_dir / "debug.log"
    server_log = site.log_dir / "php-server.log"
    for f in (log, server_log):
        if f.exists():
            assert password not in f.read_text(errors="replace")


async def test_the_bridges_own_client_reads_the_answers(site: WordPressSite) -> None:
    """The lead's bridge.wordpress client (what the homeserver login goes through) against it."""
    uid, login, password = await person(site)
    client = WordPress(site.url + PATH, SECRET, timeout=10)
    try:
        ok = await client.check_login(login, password)
        assert (ok.valid, ok.active, ok.wp_id) == (True, True, uid)
        bad = await client.check_login(login, "nope")
        assert bad.valid is False
    finally:
        await client.close()
