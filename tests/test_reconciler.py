"""The reconciler against a real Synapse: rooms, power levels, membership, departure, drift."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from conftest import Firm, Homeserver, make_config, running_bridge

BOT = "@firmbridge:firm.test"


def mx(firm: Firm, name: str) -> str:
    return f"@{firm.login(name)}:firm.test"


async def eventually(check, timeout: float = 30, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it holds; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


async def small_firm(firm: Firm, privileged: bool = False) -> dict:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    await firm.person(3, "pam", "paralegal", attorneys=[firm.pid(2)])
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(
        10,
        clients=[4],
        responsible_partner=1,
        associates=[2],
        paralegals=[3],
        privileged=privileged,
    )
    return await firm.wait_synced("matter", 10)


async def login_device(hs: Homeserver, mxid: str) -> str:
    status, data = await hs.as_request(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.application_service", "identifier": {"type": "m.id.user", "user": mxid}},
    )
    assert status == 200, data
    return data["access_token"]


async def whoami_status(hs: Homeserver, token: str) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            hs.url + "/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        return r.status


async def test_matter_room_shape(firm: Firm) -> None:
    data = await small_firm(firm)
    room = data["room_id"]
    state = await firm.hs.room_state(room)
    create = state[("m.room.create", "")]
    assert create["room_version"] == "12" and create["m.federate"] is False
    assert state[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
    assert state[("m.room.join_rules", "")]["join_rule"] == "invite"
    assert state[("m.room.guest_access", "")]["guest_access"] == "forbidden"
    assert state[("m.room.history_visibility", "")]["history_visibility"] == "invited"
    assert state[("m.room.name", "")]["name"] == f"M-{firm.tag}-10 · Matter 10"
    alias = f"#matter-m-{firm.tag}-10:firm.test"
    assert data["alias"] == alias
    assert state[("m.room.canonical_alias", "")]["alias"] == alias
    resolved = await firm.hs.admin_get(
        f"/_matrix/client/v3/directory/room/{alias.replace('#', '%23')}"
    )
    assert resolved["room_id"] == room

    power = state[("m.room.power_levels", "")]
    assert power["users"] == {
        mx(firm, "pat"): 50,
        mx(firm, "ann"): 40,
        mx(firm, "pam"): 20,
        mx(firm, "cal"): 10,
    }
    for key in ("state_default", "invite", "kick", "ban", "redact"):
        assert power[key] == 100, key
    assert power["events_default"] == 0
    assert await firm.hs.joined(room) == {
        BOT,
        mx(firm, "pat"),
        mx(firm, "ann"),
        mx(firm, "pam"),
        mx(firm, "cal"),
    }
    # Encryption was part of the initial state: on before anyone but the bridge was in the room.
    timeline = await firm.hs.admin_get(f"/_synapse/admin/v1/rooms/{room}/messages?dir=f&limit=50")
    types = [(e["type"], e.get("state_key")) for e in timeline["chunk"]]
    first_other = next(i for i, t in enumerate(types) if t[0] == "m.room.member" and t[1] != BOT)
    assert types.index(("m.room.encryption", "")) < first_other
    # Display names come from WordPress.
    # (Through the admin API: profiles are readable only by people who share a room.)
    profile = await firm.hs.admin_get(f"/_synapse/admin/v2/users/{mx(firm, 'ann')}")
    assert profile["displayname"] == "Ann"


async def test_members_cannot_change_the_room(firm: Firm) -> None:
    data = await small_firm(firm)
    room = data["room_id"]
    await firm.person(5, "zed", "client")
    await firm.wait_synced("person", 5)
    before = await firm.hs.room_state(room)
    for who in ("pat", "cal"):
        attempts = [
            ("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", {"name": "x"}),
            ("POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": mx(firm, "zed")}),
            ("POST", f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": mx(firm, "ann")}),
            (
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/",
                {**before[("m.room.power_levels", "")], "users": {mx(firm, who): 100}},
            ),
            (
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/",
                {"join_rule": "public"},
            ),
        ]
        for method, path, body in attempts:
            status, resp = await firm.hs.as_request(method, path, body, user_id=mx(firm, who))
            assert status == 403 and resp["errcode"] == "M_FORBIDDEN", (who, path, resp)
    assert await firm.hs.room_state(room) == before


async def test_closed_matter_is_read_only_and_readable(firm: Firm) -> None:
    data = await small_firm(firm)
    room = data["room_id"]
    status, _ = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/t1",
        {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AAAA",
            "session_id": "s",
            "sender_key": "k",
            "device_id": "D",
        },
        user_id=mx(firm, "cal"),
    )
    assert status == 200
    await firm.matter(
        10, clients=[4], responsible_partner=1, associates=[2], paralegals=[3], status="closed"
    )
    await firm.wait_synced("matter", 10)
    power = (await firm.hs.room_state(room))[("m.room.power_levels", "")]
    assert power["events_default"] == 100
    for who in ("cal", "pat"):
        status, resp = await firm.hs.as_request(
            "PUT",
            f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/t2{who}",
            {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "AAAA",
                "session_id": "s",
                "sender_key": "k",
                "device_id": "D",
            },
            user_id=mx(firm, who),
        )
        assert status == 403, resp
    status, resp = await firm.hs.as_request(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=20", user_id=mx(firm, "cal")
    )
    assert status == 200
    assert any(e["type"] == "m.room.encrypted" for e in resp["chunk"])
    assert mx(firm, "cal") in await firm.hs.joined(room)


async def test_membership_follows_assignments(firm: Firm) -> None:
    data = await small_firm(firm)
    room = data["room_id"]
    # Unassign the associate; the paralegal leaves when the matter becomes privileged.
    await firm.matter(10, clients=[4], responsible_partner=1, paralegals=[3], privileged=True)
    await firm.wait_synced("matter", 10)
    members = await firm.hs.members(room)
    assert members[mx(firm, "ann")] == "leave"
    assert members[mx(firm, "pam")] == "leave"
    assert await firm.hs.joined(room) == {BOT, mx(firm, "pat"), mx(firm, "cal")}
    # Assigned again: back in.
    await firm.matter(10, clients=[4], responsible_partner=1, associates=[2], paralegals=[3])
    await firm.wait_synced("matter", 10)
    assert await firm.hs.joined(room) == {
        BOT,
        mx(firm, "pat"),
        mx(firm, "ann"),
        mx(firm, "pam"),
        mx(firm, "cal"),
    }


async def test_role_change_moves_power_level(firm: Firm) -> None:
    data = await small_firm(firm)
    await firm.person(2, "ann", "partner")
    await firm.wait_synced("matter", 10)
    power = (await firm.hs.room_state(data["room_id"]))[("m.room.power_levels", "")]
    assert power["users"][mx(firm, "ann")] == 50


async def test_departure(firm: Firm) -> None:
    data = await small_firm(firm)
    room = data["room_id"]
    await firm.person(6, "sue", "partner")
    await firm.person(7, "dan", "associate", supervisor=firm.pid(6))
    await firm.person(8, "cli", "client", attorneys=[firm.pid(7)])
    await firm.matter(11, clients=[8], responsible_partner=1, associates=[7])
    await firm.matter(10, clients=[4], responsible_partner=1, associates=[2, 7], paralegals=[3])
    other = await firm.wait_synced("matter", 11)
    await firm.wait_synced("matter", 10)
    dan = mx(firm, "dan")
    tokens = [await login_device(firm.hs, dan) for _ in range(2)]
    assert [await whoami_status(firm.hs, t) for t in tokens] == [200, 200]
    # A room of Dan's own, outside any matter.
    status, created = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, user_id=dan
    )
    assert status == 200

    status, resp = await firm.api.deactivate(firm.pid(7))
    assert status == 200, resp
    assert resp["departure"]["successor"] == firm.pid(6)
    assert sorted(resp["departure"]["matters"]) == [firm.pid(10), firm.pid(11)]
    await firm.wait_synced("person", 7)
    for n in (10, 11):
        matter = await firm.wait_synced("matter", n)
        assert dan not in matter["members"]
        assert mx(firm, "sue") in matter["members"]

    assert [await whoami_status(firm.hs, t) for t in tokens] == [401, 401]
    status, joined = await firm.hs.as_request("GET", "/_matrix/client/v3/joined_rooms", user_id=dan)
    assert status == 200 and joined["joined_rooms"] == []
    for r in (room, other["room_id"]):
        members = await firm.hs.members(r)
        assert members[dan] == "leave"
        assert members[mx(firm, "sue")] == "join"
    # (His own room emptied when he left, so the homeserver keeps no current state for it.)
    assert created["room_id"] not in joined["joined_rooms"]
    status, client = await firm.api.get_person(firm.pid(8))
    assert client["attorneys"] == [firm.pid(6)]
    status, gone = await firm.api.get_person(firm.pid(7))
    assert gone["active"] is False and gone["matters"] == []


async def test_matter_whose_client_departed_still_takes_updates(firm: Firm) -> None:
    """A matter opens for a client; once its only client has left it must still be closable,
    held and staffed (WordPress then sends it with no client)."""
    await firm.person(1, "pam", "partner")
    await firm.person(2, "ada", "associate")
    await firm.person(4, "cy", "client")
    body = {"number": f"M-{firm.tag}-12", "title": "Estate", "privileged": False}
    status, data = await firm.api.put_matter(
        firm.pid(12), {**body, "clients": [], "responsible_partner": firm.pid(1)}
    )
    assert (status, data["field"]) == (400, "clients"), data  # a new matter needs its client
    status, data = await firm.api.get_matter(firm.pid(12))
    assert status == 404
    await firm.matter(12, **body, clients=[4], responsible_partner=1)
    room = (await firm.wait_synced("matter", 12))["room_id"]
    status, resp = await firm.api.deactivate(firm.pid(4))
    assert status == 200, resp
    await firm.wait_synced("matter", 12)
    assert (await firm.hs.members(room))[mx(firm, "cy")] == "leave"

    status, data = await firm.api.put_matter(
        firm.pid(12),
        {
            **body,
            "clients": [],
            "responsible_partner": firm.pid(1),
            "associates": [firm.pid(2)],
            "legal_hold": True,
            "status": "closed",
        },
    )
    assert status == 200, data
    assert data["status"] == "closed"
    assert {(a["wp_id"], a["capacity"]) for a in data["assignments"]} == {
        (firm.pid(1), "responsible_partner"),
        (firm.pid(2), "associate"),
    }
    data = await firm.wait_synced("matter", 12)
    assert data["room_id"] == room
    joined = await firm.hs.joined(room)
    assert mx(firm, "ada") in joined and mx(firm, "cy") not in joined
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        hold = await conn.fetchval(
            "SELECT legal_hold FROM matter_retention WHERE matter_id = $1", firm.pid(12)
        )
    assert hold


async def test_bridge_has_no_device_or_keys(firm: Firm) -> None:
    await small_firm(firm)
    status, devices = await firm.hs.as_request("GET", "/_matrix/client/v3/devices")
    assert status == 200 and devices["devices"] == []
    keys = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/keys/query", {"device_keys": {BOT: []}}
    )
    assert keys[0] == 200 and keys[1]["device_keys"].get(BOT, {}) == {}


@pytest.fixture
async def drifting_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    config = make_config(homeserver, db_uri, tmp_path, **{"reconciler.drift_interval": 1})
    async with running_bridge(config, homeserver) as firm:
        yield firm


async def test_drift_is_repaired(drifting_firm: Firm) -> None:
    firm = drifting_firm
    data = await small_firm(firm)
    room = data["room_id"]
    hs = firm.hs
    power = (await hs.room_state(room))[("m.room.power_levels", "")]
    # Someone with the appservice token edits power levels, renames the room and kicks a member.
    hacked = {**power, "users": {**power["users"], mx(firm, "cal"): 99}, "events_default": 50}
    assert (
        await hs.as_request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/", hacked
        )
    )[0] == 200
    assert (
        await hs.as_request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", {"name": "renamed"}
        )
    )[0] == 200
    assert (
        await hs.as_request(
            "POST", f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": mx(firm, "ann")}
        )
    )[0] == 200

    want = data["power_levels"]

    async def repaired() -> bool:
        state = await hs.room_state(room)
        have = state[("m.room.power_levels", "")]
        return (
            {k: have.get(k) for k in want} == want
            and state[("m.room.name", "")]["name"].endswith("Matter 10")
            and state[("m.room.member", mx(firm, "ann"))]["membership"] == "join"
        )

    await eventually(repaired)


async def test_member_leaving_is_rejoined(firm: Firm) -> None:
    # The periodic pass is an hour away here: the repair comes from the appservice transaction.
    data = await small_firm(firm)
    room = data["room_id"]
    status, _ = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/leave", {}, user_id=mx(firm, "cal")
    )
    assert status == 200

    async def back() -> bool:
        return mx(firm, "cal") in await firm.hs.joined(room)

    await eventually(back)


async def test_homeserver_down_then_up(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.wait_synced("person", 1)
    server = firm.hs.server
    server.stop()
    try:
        await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
        await firm.matter(10, clients=[4], responsible_partner=1)

        async def retrying() -> bool:
            _, data = await firm.api.get_matter(firm.pid(10))
            return data["sync"]["state"] == "retrying" and data["sync"]["last_error"]

        await eventually(retrying)
    finally:
        server.start()
    data = await firm.wait_synced("matter", 10, timeout=60)
    assert await firm.hs.joined(data["room_id"]) == {BOT, mx(firm, "pat"), mx(firm, "cal")}


async def test_room_made_before_a_crash_is_adopted_not_made_twice(firm: Firm) -> None:
    data = await small_firm(firm)
    # As if the bridge died between createRoom and saving the room id.
    await firm.bridge.db.execute(
        "UPDATE matter SET room_id = NULL, desired_version = desired_version + 1 WHERE wp_id = $1",
        firm.pid(10),
    )
    firm.bridge.reconciler.notify([("matter", firm.pid(10))])
    again = await firm.wait_synced("matter", 10)
    assert again["room_id"] == data["room_id"]
    rooms = await firm.hs.admin_get(f"/_synapse/admin/v1/rooms?search_term=M-{firm.tag}-10")
    assert rooms["total_rooms"] == 1
