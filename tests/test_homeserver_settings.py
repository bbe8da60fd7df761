"""The firm's settings for Synapse (bridge/core/homeserver_settings.py), each on a real Synapse: the
demo's limits logins (#12 item 11: it allowed 1,000 a second), push notifications carry no
message content (item 15), and the module warns at start-up about every setting a firm's own
homeserver lacks, and puts back a global name a person changes where that is allowed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from conftest import DOMAIN, Homeserver, make_config, running_bridge, running_homeserver
from ruamel.yaml import YAML
from test_reconciler import eventually

from bridge.demo import Demo
from bridge.devtools.synapse import free_port

LACKS = "homeserver.yaml lacks a firm setting"


async def login(url: str, user: str, password: str) -> int:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/_matrix/client/v3/login", json=body) as r,
    ):
        return r.status


async def test_demo_homeserver_limits_logins(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    demo = Demo(tmp_path / "demo", free_port(), free_port(), free_port())
    server = demo.start_synapse()  # exactly the demo's homeserver.yaml
    try:
        server.register_user("_victim", "the right password")  # an operator-style account
        # Wrong passwords for one account: refused, then limited (failed attempts per account).
        one = [await login(server.base_url, "@_victim:firm.test", f"guess {i}") for i in range(20)]
        first = one.index(429)  # raises if never limited (the demo allowed 60 in 15 s)
        assert 10 <= first <= 14 and set(one[:first]) == {403}, one
        # Many accounts from one address: the address limit.
        many = [await login(server.base_url, f"@_u{i}:firm.test", "x") for i in range(12)]
        assert 429 in many, many
        # The demo's homeserver has every firm setting: its module warns about none.
        assert LACKS not in server.log_path.read_text()
    finally:
        server.stop()


WEAKENED = {
    "require_auth_for_profile_requests": False,
    "limit_profile_requests_to_users_who_share_rooms": False,
    "enable_set_displayname": True,
    "push": {"include_content": True},
    "experimental_features": {"msc3814_enabled": False},
}


async def test_module_warns_about_what_the_homeserver_lacks(tmp_path: Path) -> None:
    work = tmp_path / "synapse"
    work.mkdir()
    with running_homeserver(work, homeserver_yaml=WEAKENED) as hs:
        lines = [line for line in hs.server.log_path.read_text().splitlines() if LACKS in line]
        # Each weakened setting, the tests' own login limits (kept high for their logins) and
        # the relay this Synapse names none of (the calls tests give theirs one).
        for name in (
            "require_auth_for_profile_requests",
            "limit_profile_requests_to_users_who_share_rooms",
            "enable_set_displayname",
            "push.include_content",
            "msc3814_enabled",
            "rc_login.address",
            "rc_login.account",
            "rc_login.failed_attempts",
            "turn_uris",
            "turn_shared_secret",
        ):
            assert sum(name in line for line in lines) == 1, (name, lines)
        assert len(lines) == 10, lines

        # Here people may change their global name; the module puts the firm's back.
        config = make_config(hs, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path)
        async with running_bridge(config, hs) as firm:
            await firm.person(4, "cy", "client")
            await firm.wait_synced("person", 4)
            cy = f"@{firm.login('cy')}:{DOMAIN}"
            profile = f"/_matrix/client/v3/profile/{quote(cy)}"
            status, body = await hs.as_request(
                "PUT", profile + "/displayname", {"displayname": "Jane Doe (Partner)"}, user_id=cy
            )
            assert status == 200, body

            async def name_back() -> bool:
                status, body = await hs.as_request("GET", profile, user_id=cy)
                return status == 200 and body.get("displayname") == "Cy"

            await eventually(name_back, timeout=10, interval=0.2)


# --- push ------------------------------------------------------------------------------------


def people_not_exclusive(path: Path) -> None:
    yaml = YAML()
    data = yaml.load(path.read_text())
    for namespace in data["namespaces"]["users"]:
        namespace["exclusive"] = False
    with path.open("w") as f:
        yaml.dump(data, f)


class PushGateway:
    """A loopback push gateway (Sygnal's role): records what the homeserver sends."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/_matrix/push/v1/notify"
        self.received: list[dict[str, Any]] = []

    async def notify(self, request: web.Request) -> web.Response:
        self.received.append((await request.json())["notification"])
        return web.json_response({"rejected": []})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PushGateway]:
        app = web.Application()
        app.router.add_post("/_matrix/push/v1/notify", self.notify)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


async def test_push_notifications_carry_no_content(tmp_path: Path) -> None:
    work = tmp_path / "synapse"
    work.mkdir()
    gateway = PushGateway()
    # Synapse refuses to push to loopback addresses unless told (the gateway runs here); and it
    # evaluates no push rules for users in an appservice's exclusive namespace (all the firm's
    # people, with the bridge's registration as it is): here the namespace is not exclusive, so
    # that notifications are made at all.
    with running_homeserver(
        work,
        homeserver_yaml={"ip_range_whitelist": ["127.0.0.1"]},
        edit_registration=people_not_exclusive,
    ) as hs:
        config = make_config(hs, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path)
        async with running_bridge(config, hs) as firm, gateway.running():
            await firm.person(1, "pat", "partner")
            await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
            await firm.matter(10, clients=[4], responsible_partner=1, title="Smith v Jones")
            room = (await firm.wait_synced("matter", 10))["room_id"]
            token = await phone_session(hs, firm, 1)
            for key, data in (
                ("full", {"url": gateway.url}),
                ("ids", {"url": gateway.url, "format": "event_id_only"}),
            ):
                await set_pusher(hs, token, key, data)
            cal = f"@{firm.login('cal')}:{DOMAIN}"
            status, sent = await hs.as_request(
                "PUT",
                f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/t1",
                {"msgtype": "m.text", "body": "The settlement offer is 40,000"},
                user_id=cal,
            )
            assert status == 200, sent

            async def both_pushed() -> bool:
                return (
                    len([n for n in gateway.received if n.get("event_id") == sent["event_id"]]) >= 2
                )

            await eventually(both_pushed, timeout=20, interval=0.2)
    pushed = [n for n in gateway.received if n.get("event_id") == sent["event_id"]]
    text = json.dumps(pushed)
    assert "settlement" not in text and "40,000" not in text, pushed
    assert all("content" not in n for n in pushed), pushed
    # A pusher that asks for ids only gets no names either (Element's apps ask for that).
    ids_only = [n for n in pushed if "type" not in n]
    assert ids_only and all("room_name" not in n and "sender" not in n for n in ids_only), pushed


async def phone_session(hs: Homeserver, firm: Any, n: int) -> str:
    """A real device session for the person (pushers belong to a device's access token)."""
    status, minted = await firm.api.request("POST", f"/_firm/v1/people/{firm.pid(n)}/login-token")
    assert status == 200, minted
    body = {"type": "m.login.token", "token": minted["login_token"]}
    async with (
        aiohttp.ClientSession() as s,
        s.post(hs.url + "/_matrix/client/v3/login", json=body) as r,
    ):
        assert r.status == 200, await r.text()
        return str((await r.json())["access_token"])


async def set_pusher(hs: Homeserver, token: str, key: str, data: dict[str, Any]) -> None:
    body = {
        "kind": "http",
        "app_id": "org.firm.test",
        "pushkey": key,
        "app_display_name": "Firm test",
        "device_display_name": "phone",
        "lang": "en",
        "data": data,
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hs.url + "/_matrix/client/v3/pushers/set",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
