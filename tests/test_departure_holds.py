"""A departure holds on the homeserver before the deactivate call answers (from a penetration
test: for about a second after it, a departed person's new login worked, because the module
re-read the firm's state once a second). The bridge has the module read the state before it
answers, and the module refuses every login of a departed person, including one with a login
token minted before the departure."""

from __future__ import annotations

from typing import Any

import aiohttp
from conftest import MODULE_SECRET, Firm

from bridge.core.constants import HELD_PATH, REFRESH_PATH
from bridge.db import store


async def token_login(firm: Firm, token: str) -> tuple[int, Any]:
    body = {"type": "m.login.token", "token": token}
    async with (
        aiohttp.ClientSession() as s,
        s.post(firm.hs.url + "/_matrix/client/v3/login", json=body) as r,
    ):
        return r.status, await r.json(content_type=None)


async def get(firm: Firm, path: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.get(firm.hs.url + path, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status


async def mint(firm: Firm, n: int) -> str:
    status, minted = await firm.api.request("POST", f"/_firm/v1/people/{firm.pid(n)}/login-token")
    assert status == 200, minted
    return str(minted["login_token"])


async def test_departure_holds_before_the_call_answers(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[4], responsible_partner=1)
    room = (await firm.wait_synced("matter", 10))["room_id"]
    await firm.wait_synced("person", 4)
    status, session = await token_login(firm, await mint(firm, 4))
    assert status == 200, session
    access = session["access_token"]
    assert await get(firm, f"/_matrix/client/v3/rooms/{room}/messages?dir=b", access) == 200
    spare = await mint(firm, 4)  # minted before the departure, used after it

    status, body = await firm.api.deactivate(firm.pid(4))
    assert status == 200, body
    # The module already holds the state with the departure, before anything asks it to read
    # (a login does): the bridge had it read before answering. Asked without reading.
    async with firm.bridge.db.acquire() as conn:
        departed_in = await store.generation(conn)
    async with (
        aiohttp.ClientSession() as s,
        s.get(firm.hs.url + HELD_PATH, headers={"Authorization": f"Bearer {MODULE_SECRET}"}) as r,
    ):
        held = (await r.json())["generation"]
    assert r.status == 200 and held is not None and held >= departed_in, (held, departed_in)
    # At once, not "within a second": the token opens no session, the old session reads
    # nothing.
    status, refused = await token_login(firm, spare)
    assert status == 403, refused
    for path in ("/_matrix/client/v3/account/whoami", f"/_matrix/client/v3/rooms/{room}/messages"):
        assert await get(firm, path, access) in (401, 403), path


async def test_only_the_bridge_asks_the_module_to_read(firm: Firm) -> None:
    url = firm.hs.url + REFRESH_PATH
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={}, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with s.post(url, json={}, headers={"Authorization": f"Bearer {MODULE_SECRET}"}) as r:
            assert r.status == 200
            assert isinstance((await r.json())["generation"], int)
