"""To-device messages on the clients' address, with raw client-server calls against the real
Synapse with the module and the real gateway: only the types encryption and verification use,
and only to people the sender may talk to or shares a room with; refusals deliver nothing."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from conftest import Homeserver
from media_helpers import MediaFirm, person_with_token, running_media_firm

NOTE_TEXT = "meet me outside the firm's system"


async def send(base: str, token: str, event_type: str, messages: dict[str, Any]) -> tuple[int, Any]:
    path = f"/_matrix/client/v3/sendToDevice/{quote(event_type, safe='')}/{secrets.token_hex(6)}"
    async with (
        aiohttp.ClientSession() as s,
        s.put(
            base + path,
            json={"messages": messages},
            headers={"Authorization": f"Bearer {token}"},
            ssl=False,
        ) as r,
    ):
        return r.status, await r.json(content_type=None)


async def received(hs_url: str, token: str) -> list[dict]:
    """The to-device messages waiting for this device (a first sync returns all of them)."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            hs_url + "/_matrix/client/v3/sync",
            # A filter of its own each time: Synapse answers a repeated sync from its cache.
            params={
                "timeout": "0",
                "filter": json.dumps({"room": {"rooms": [], "not_types": [secrets.token_hex(4)]}}),
            },
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == 200
        return list((await r.json()).get("to_device", {}).get("events", []))


def to_all(content: dict) -> dict:
    return {"*": content}


async def check_to_device(mf: MediaFirm, homeserver: Homeserver, base: str) -> None:
    """The rules, through `base` (the gateway, or nginx in front of it)."""
    firm = mf.firm
    pat, t_pat = await person_with_token(firm, 1, "tpat", "partner")
    qin, t_qin = await person_with_token(firm, 2, "tqin", "partner")
    ann, t_ann = await person_with_token(firm, 3, "tann", "associate", supervisor=firm.pid(1))
    cal, t_cal = await person_with_token(firm, 4, "tcal", "client", attorneys=[firm.pid(1)])
    cat, t_cat = await person_with_token(firm, 5, "tcat", "client", attorneys=[firm.pid(1)])
    out, t_out = await person_with_token(firm, 6, "tout", "client", attorneys=[firm.pid(2)])
    par, t_par = await person_with_token(firm, 7, "tpar", "paralegal", attorneys=[firm.pid(1)])
    # Matter 10: P, A, co-clients C and T. Privileged: the paralegal is assigned, not in its
    # room. Matter 11: Q and client O.
    await firm.matter(
        10, clients=[4, 5], responsible_partner=1, associates=[3], paralegals=[7], privileged=True
    )
    await firm.matter(11, clients=[6], responsible_partner=2)
    room10 = (await firm.wait_synced("matter", 10))["room_id"]
    await firm.wait_synced("matter", 11)
    admin = homeserver.admin_id
    note = {"msgtype": "m.text", "body": NOTE_TEXT}
    request = {"from_device": "X", "methods": ["m.sas.v1"], "transaction_id": "t1", "timestamp": 1}
    olm = {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "k", "ciphertext": {}}

    # What the penetration test did: a client reaching another client and the administrator.
    for token, target, event_type, content in (
        (t_cal, out, "m.room.encrypted", olm),  # another attorney's client
        (t_cal, out, "m.key.verification.request", request),
        (t_cal, admin, "m.key.verification.request", request),  # the administrator
        (t_out, cal, "m.room_key_request", {"action": "request", "requesting_device_id": "X"}),
        (t_qin, cal, "m.room.encrypted", olm),  # a partner not on C's matters
        (t_par, cal, "m.room.encrypted", olm),  # assigned, but kept out of the privileged room
        (t_cal, par, "m.room.encrypted", olm),
    ):
        status, body = await send(base, token, event_type, {target: to_all(content)})
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), (target, event_type, body)
        assert target in body["error"]
    # Any type outside encryption and verification, even to one's own attorney or oneself.
    for event_type in ("m.text", "org.example.chat", "m.key.verification.", "m.room.message"):
        for target in (pat, cal):
            status, body = await send(base, t_cal, event_type, {target: to_all(note)})
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), (event_type, body)
            assert "type" in body["error"]
    # One recipient out of reach refuses the whole request: nothing reaches the others either.
    status, body = await send(base, t_cal, "m.room.encrypted", {pat: to_all(olm), out: to_all(olm)})
    assert status == 403 and out in body["error"]
    # Bad bodies are refused, not guessed at.
    for messages in ([], {pat: []}, {pat: {"*": "text"}}):
        status, body = await send(base, t_cal, "m.room.encrypted", messages)  # type: ignore[arg-type]
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), messages
    for token in (t_out, homeserver.admin_token, t_pat):
        assert [e for e in await received(homeserver.url, token) if e["sender"] == cal] == []

    # Allowed: the attorney, the associate on the matter, the co-client (same matter room),
    # oneself, the supervising partner, the assigned attorney's paralegal.
    allowed: list[tuple[str, str, str, dict]] = [
        (t_cal, pat, "m.room.encrypted", olm),
        (t_cal, ann, "m.room.encrypted", olm),
        (t_cal, cat, "m.room.encrypted", olm),  # co-clients: the table has them talk to no one
        (t_ann, pat, "m.key.verification.request", request),  # supervising partner
        (t_cal, cal, "m.secret.request", {"action": "request", "name": "m.megolm_backup.v1"}),
        (t_pat, cal, "m.key.verification.request", request),
        (t_par, pat, "m.room_key_request", {"action": "request_cancellation"}),
        (t_qin, out, "m.dummy", {}),
    ]
    for token, target, event_type, content in allowed:
        status, body = await send(base, token, event_type, {target: to_all(content)})
        assert (status, body) == (200, {}), (target, event_type, body)
    got = await received(homeserver.url, t_pat)
    assert {(e["sender"], e["type"]) for e in got} == {
        (cal, "m.room.encrypted"),
        (ann, "m.key.verification.request"),
        (par, "m.room_key_request"),
    }

    # Sharing a room counts as such, asked of the homeserver: with the reconciler held, A is
    # taken off the matter in the firm's records but still in its room; once the room follows,
    # she is out of reach.
    await firm.bridge.reconciler.stop()
    try:
        await firm.matter(
            10, clients=[4, 5], responsible_partner=1, paralegals=[7], privileged=True
        )
        assert ann in await homeserver.joined(room10)
        status, body = await send(base, t_cal, "m.room.encrypted", {ann: to_all(olm)})
        assert status == 200, body
    finally:
        firm.bridge.reconciler.start()
    await firm.wait_synced("matter", 10)
    status, body = await send(base, t_cal, "m.room.encrypted", {ann: to_all(olm)})
    assert status == 403, body


async def test_to_device_through_the_gateway(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        await check_to_device(mf, homeserver, mf.gateway)
