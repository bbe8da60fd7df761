"""Matrix clients log in with WordPress usernames and passwords: the homeserver module asks the
bridge, the bridge asks this plugin's real login check (no stand-in)."""

from __future__ import annotations

import secrets
from pathlib import Path

from conftest import Homeserver
from test_policy_module import password_login
from test_reconciler import eventually, whoami_status

from .conftest import _wp_firm
from .wp_harness import WordPressSite


async def test_matrix_login_with_wordpress_password(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path
) -> None:
    check_url = wp_site.url + "/wp-json/firm-bridge/v1/login-check"
    async with _wp_firm(
        wp_site,
        homeserver,
        f"sqlite:{tmp_path / 'bridge.db'}",
        tmp_path,
        **{"wordpress.login_check_url": check_url},
    ) as wp:
        password = secrets.token_urlsafe(16)
        login = wp.login("lee")
        uid = await wp.site.create_user(login, "firm_partner", name="Lee", password=password)
        person = await wp.wait_bridge("person", uid)

        status, resp = await password_login(homeserver, login, password)
        assert status == 200, resp
        assert resp["user_id"] == person["user_id"]
        token = resp["access_token"]
        assert await whoami_status(homeserver, token) == 200
        for user, pw in ((login, password + "x"), (f"nobody{wp.tag}", password)):
            status, resp = await password_login(homeserver, user, pw)
            assert status == 403, (user, resp)

        # Suspended in WordPress (the firm role taken away): the plugin reports a departure,
        # the open session ends and the password no longer logs in.
        await wp.site.update_user(uid, roles=["subscriber"])
        await wp.wait_bridge("person", uid, active=False)

        async def session_ended() -> bool:
            return await whoami_status(homeserver, token) == 401

        await eventually(session_ended, timeout=10)
        status, _ = await password_login(homeserver, login, password)
        assert status == 403
        assert password not in homeserver.server.log_path.read_text()
