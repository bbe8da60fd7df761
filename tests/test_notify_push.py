"""Quiet push (issue 13): what the real Synapse sends a phone's push gateway for a firm person.

The firm's people get push at all only because the bridge's user namespace is not exclusive
(Synapse computes no push actions for an exclusive appservice namespace). With
`push.include_content: false` no push carries the event's content; a pusher that asks for
`format: event_id_only` (Element X, Element on Android) gets only ids and the unread count,
while one that does not also gets the sender's and the room's names (a matter room's name holds
its title): the README tells attorneys which apps to use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from conftest import DOMAIN, Firm
from e2ee_client import DeviceClient

from bridge.devtools.synapse import free_port


async def test_pushes_carry_no_content(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(3, clients=[2], responsible_partner=1, title="Secret merger title")
    room = (await firm.wait_synced("matter", 3))["room_id"]
    pat = f"@{firm.login('pat')}:{DOMAIN}"
    cal = f"@{firm.login('cal')}:{DOMAIN}"

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
    gateway = f"http://127.0.0.1:{port}/_matrix/push/v1/notify"
    hs = firm.hs
    attorney = await DeviceClient.login_appservice(hs.url, hs.registration.as_token, pat)
    client = await DeviceClient.login_appservice(hs.url, hs.registration.as_token, cal)
    try:
        await attorney.start()
        await client.start()
        for app_id, data in (
            ("io.element.elementx", {"url": gateway, "format": "event_id_only"}),
            ("org.example.other", {"url": gateway}),
        ):
            await attorney.client.api.request(
                "POST",  # type: ignore[arg-type]
                "/_matrix/client/v3/pushers/set",  # type: ignore[arg-type]
                {
                    "kind": "http",
                    "app_id": app_id,
                    "pushkey": f"key-{app_id}",
                    "app_display_name": "phone app",
                    "device_display_name": "phone",
                    "lang": "en",
                    "data": data,
                },
            )
        words = "meet me at the courthouse at noon"
        event_id = await client.send_text(room, words)
        deadline = time.monotonic() + 30
        while len([n for n in received if n.get("event_id") == event_id]) < 2:
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.2)
        pushes = {n["devices"][0]["app_id"]: n for n in received if n.get("event_id") == event_id}
        quiet, other = pushes["io.element.elementx"], pushes["org.example.other"]
        for push in (quiet, other):
            assert "content" not in push and words not in str(push)
            assert push["room_id"] == room and push["counts"]["unread"] >= 1
        # event_id_only: nothing but ids, priority and the count.
        assert set(quiet) <= {"event_id", "room_id", "counts", "prio", "devices"}, quiet
        # Otherwise Synapse adds the sender and the room's name (the matter's title).
        assert other["sender"] == cal and "Secret merger title" in other.get("room_name", "")
    finally:
        await attorney.stop()
        await client.stop()
        await runner.cleanup()
