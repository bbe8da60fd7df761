"""Quiet push (issues 12 and 13): what the real Synapse sends a phone's push gateway for a firm
person, with pushers set through the clients' address (the media gateway).

The firm's people get push at all only because the bridge's user namespace is not exclusive
(Synapse computes no push actions for an exclusive appservice namespace). With
`push.include_content: false` no push carries the event's content; but a pusher registered
without `"format": "event_id_only"` also gets the sender's name and the room's name (a matter
room's name holds its title). The gateway sets that format on every HTTP pusher it passes on, so
whatever app an attorney uses, its push service gets ids and a count only. The control, a
pusher set on Synapse's own address (which clients are never given), shows what the gateway
prevents, and that the loopback push gateway below would see the names if they were sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from conftest import DOMAIN, Homeserver
from e2ee_client import DeviceClient
from media_helpers import person_with_token, running_media_firm, user_token

from bridge.devtools.synapse import free_port

QUIET_KEYS = {"event_id", "room_id", "counts", "prio", "devices"}


@asynccontextmanager
async def push_gateway() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A phone app's push gateway on loopback: the URL pushers name, and what it received."""
    received: list[dict[str, Any]] = []

    async def notify(request: web.Request) -> web.Response:
        received.append((await request.json())["notification"])
        return web.json_response({"rejected": []})

    app = web.Application()
    app.router.add_post("/_matrix/push/v1/notify", notify)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/_matrix/push/v1/notify", received
    finally:
        await runner.cleanup()


def pusher(app_id: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "http",
        "app_id": app_id,
        "pushkey": f"key-{app_id}",
        "app_display_name": "phone app",
        "device_display_name": "phone",
        "lang": "en",
        "data": data,
        **extra,
    }


async def post(
    s: aiohttp.ClientSession, url: str, token: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with s.post(url, json=body if raw is None else None, data=raw, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def pushers_of(s: aiohttp.ClientSession, base: str, token: str) -> dict[str, Any]:
    async with s.get(
        base + "/_matrix/client/v3/pushers", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 200
        return {p["app_id"]: p for p in (await r.json())["pushers"]}


async def test_pushers_set_through_the_clients_address_are_quiet(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    async with (
        running_media_firm(homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}) as mf,
        push_gateway() as (url, received),
        aiohttp.ClientSession() as s,
    ):
        firm, gw = mf.firm, mf.gateway
        pat, _ = await person_with_token(firm, 1, "pat", "partner")
        cal = f"@{firm.login('cal')}:{DOMAIN}"
        await firm.person(2, "cal", "client", attorneys=[firm.pid(1)])
        await firm.matter(3, clients=[2], responsible_partner=1, title="Secret merger title")
        room = (await firm.wait_synced("matter", 3))["room_id"]
        # The attorney's phone app logs in on the clients' address, as every client is told to.
        token = await user_token(gw, homeserver.registration.as_token, pat)

        # Through the clients' address, on each path Synapse serves it: no format, another
        # format (with a field of the app's own, kept), and the quiet one asked for.
        for path, body in (
            ("/_matrix/client/v3/pushers/set", pusher("app.noformat", {"url": url})),
            (
                "/_matrix/client/r0/pushers/set",
                pusher("app.full", {"url": url, "format": "full", "app_field": 7}, append=True),
            ),
            (
                "/_matrix/client/api/v1/pushers/set?x=1",
                pusher("app.quiet", {"url": url, "format": "event_id_only"}),
            ),
            ("/_matrix/client/unstable/pushers/set", pusher("app.gone", {"url": url})),
        ):
            status, answer = await post(s, gw + path, token, body)
            assert status == 200, (path, answer)
        # The control, on Synapse's own address: what the gateway prevents.
        status, answer = await post(
            s, homeserver.url + "/_matrix/client/v3/pushers/set", token, pusher("app.direct", {"url": url})
        )  # fmt: skip
        assert status == 200, answer

        # Read back: every pusher set through the gateway is event_id_only, the rest kept.
        pushers = await pushers_of(s, gw, token)
        assert set(pushers) == {"app.noformat", "app.full", "app.quiet", "app.gone", "app.direct"}
        for app_id in ("app.noformat", "app.full", "app.quiet", "app.gone"):
            p = pushers[app_id]
            assert p["data"]["format"] == "event_id_only", p
            assert (p["kind"], p["pushkey"], p["lang"]) == ("http", f"key-{app_id}", "en")
            assert (p["app_display_name"], p["device_display_name"]) == ("phone app", "phone")
            assert p["data"]["url"] == url
        assert pushers["app.full"]["data"]["app_field"] == 7
        assert "format" not in pushers["app.direct"]["data"]

        # Bad bodies: a clear 400 in JSON, and no pusher changed.
        set_path = gw + "/_matrix/client/v3/pushers/set"
        for raw, errcode in (
            (b'{"kind": "http", "app_id": "app.noformat",', "M_NOT_JSON"),
            (b'["kind", "http"]', "M_BAD_JSON"),
            (b'{"kind": "http", "data": {"url": NaN}}', "M_NOT_JSON"),
            (
                b'{"kind": "http", "app_id": "app.noformat", "pushkey": "key-app.noformat",'
                b' "app_display_name": "a", "device_display_name": "d", "lang": "en",'
                b' "data": "format=full"}',
                "M_BAD_JSON",
            ),
        ):
            status, answer = await post(s, set_path, token, raw=raw)
            assert status == 400 and answer["errcode"] == errcode, (raw, answer)
            assert answer["error"]
        assert await pushers_of(s, gw, token) == pushers
        # A deletion (kind null) passes as it is.
        gone = {"kind": None, "app_id": "app.gone", "pushkey": "key-app.gone"}
        status, answer = await post(s, set_path, token, gone)
        assert status == 200, answer
        assert "app.gone" not in await pushers_of(s, gw, token)

        # A message: what each pusher's push service receives.
        client = await DeviceClient.login_appservice(gw, homeserver.registration.as_token, cal)
        try:
            await client.start()
            words = "meet me at the courthouse at noon"
            event_id = await client.send_text(room, words)
            apps = {"app.noformat", "app.full", "app.quiet", "app.direct"}
            deadline = time.monotonic() + 60
            while {n["devices"][0]["app_id"] for n in received if n.get("event_id") == event_id} != apps:  # fmt: skip
                assert time.monotonic() < deadline, received
                await asyncio.sleep(0.2)
        finally:
            await client.stop()
        pushes = {n["devices"][0]["app_id"]: n for n in received if n.get("event_id") == event_id}
        for app_id in ("app.noformat", "app.full", "app.quiet"):
            push = pushes[app_id]
            # Ids, priority and the count: no sender, no room name, no content.
            assert set(push) <= QUIET_KEYS, push
            assert push["room_id"] == room and push["counts"]["unread"] >= 1
            text = str(push)
            assert all(w not in text for w in (words, "Secret merger", cal)), push
        # Without the gateway, Synapse adds the sender and the room's name (the matter's title).
        direct = pushes["app.direct"]
        assert "content" not in direct and words not in str(direct)  # include_content: false
        assert direct["sender"] == cal and "Secret merger title" in direct.get("room_name", "")
