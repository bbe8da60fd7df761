"""Every invitation passes the role table, however it is made (from a penetration test): the
invite list, memberships in createRoom's initial_state, /invite, a server admin (who skips
Synapse's spam checks), m.room.third_party_invite, and e-mail (3pid) invitations."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
from conftest import DOMAIN, Firm, Homeserver


def who(firm: Firm, name: str) -> str:
    return f"@{firm.login(name)}:{DOMAIN}"


async def people(firm: Firm) -> None:
    """A partner and her client; a client of nobody's here; a second partner."""
    await firm.person(1, "pat", "partner")
    await firm.person(2, "pia", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.person(5, "zed", "client")
    for n in (1, 2, 4, 5):
        await firm.wait_synced("person", n)


async def invited_to(firm: Firm, user: str) -> set[str]:
    status, body = await firm.hs.as_request(
        "GET", "/_matrix/client/v3/sync?timeout=0", user_id=user
    )
    assert status == 200, body
    return set(body.get("rooms", {}).get("invite", {}))


async def as_admin(hs: Homeserver, method: str, path: str, body: Any) -> tuple[int, Any]:
    """A request with the operator's own token (a server admin, outside the firm's people)."""
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, hs.url + path, json=body, headers={"Authorization": f"Bearer {hs.admin_token}"}
        ) as r,
    ):
        return r.status, await r.json(content_type=None)


def member_invite(user: str, reason: str = "Your attorney asked me to write") -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "state_key": user,
        "content": {"membership": "invite", "reason": reason},
    }


async def test_initial_state_invitations_are_refused(firm: Firm) -> None:
    await people(firm)
    cal, zed, pat = who(firm, "cal"), who(firm, "zed"), who(firm, "pat")
    create = "/_matrix/client/v3/createRoom"
    # Another client, and the operator account: neither may be invited by a client, and the
    # initial state is no way around that.
    for target in (zed, firm.hs.admin_id):
        status, body = await firm.hs.as_request(
            "POST", create, {"initial_state": [member_invite(target)]}, user_id=cal
        )
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", (target, body)
    assert await invited_to(firm, zed) == set()
    # Not even an invitation the table allows: invitations go in the invite list.
    status, body = await firm.hs.as_request(
        "POST", create, {"initial_state": [member_invite(pat)]}, user_id=cal
    )
    assert status == 403 and "invite list" in body["error"], body
    # The room-size limit cannot be skipped that way either.
    others = [f"@nobody{i}-{firm.tag}:{DOMAIN}" for i in range(10)]
    status, body = await firm.hs.as_request(
        "POST",
        create,
        {"invite": [cal], "initial_state": [member_invite(u) for u in others]},
        user_id=pat,
    )
    assert status == 403, body
    # The invite list itself still works for a pair the table allows.
    status, body = await firm.hs.as_request("POST", create, {"invite": [pat]}, user_id=cal)
    assert status == 200, body
    assert body["room_id"] in await invited_to(firm, pat)


async def test_server_admin_invitations_pass_the_table(firm: Firm) -> None:
    # Server admins skip Synapse's spam checks (user_may_invite, user_may_create_room); the
    # module's check_event_allowed sees their invitations all the same.
    await people(firm)
    cal = who(firm, "cal")
    status, body = await as_admin(
        firm.hs, "POST", "/_matrix/client/v3/createRoom", {"invite": [cal]}
    )
    assert status == 403, body
    status, made = await as_admin(firm.hs, "POST", "/_matrix/client/v3/createRoom", {})
    assert status == 200, made  # alone in a room of their own: nobody to talk to
    status, body = await as_admin(
        firm.hs,
        "POST",
        f"/_matrix/client/v3/rooms/{quote(made['room_id'])}/invite",
        {"user_id": cal, "reason": "From the firm's IT"},
    )
    assert status == 403 and "Refused by the firm's policy" in body["error"], body
    assert await invited_to(firm, cal) == set()


async def test_group_room_limit_and_pairs_hold_for_every_invite(firm: Firm) -> None:
    await people(firm)
    pat, pia, cal, zed = (who(firm, n) for n in ("pat", "pia", "cal", "zed"))
    status, made = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"invite": [pia]}, user_id=pat
    )
    assert status == 200, made
    room = quote(made["room_id"])
    # Pia (a partner) may not talk to Pat's client: the invite is refused even though Pat,
    # who invites, may.
    status, _ = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/join", {}, user_id=pia
    )
    assert status == 200
    status, body = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": cal}, user_id=pat
    )
    assert status == 403, body
    # A membership event sent as state (not through /invite) is the same invitation.
    status, body = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.member/{quote(zed)}",
        {"membership": "invite"},
        user_id=pat,
    )
    assert status == 403, body


async def test_third_party_invitations_are_refused(firm: Firm) -> None:
    await people(firm)
    pat, cal = who(firm, "pat"), who(firm, "cal")
    status, made = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"invite": [cal]}, user_id=pat
    )
    assert status == 200, made
    room = quote(made["room_id"])
    # An e-mail invitation into an existing room: refused before Synapse would ask the
    # identity server the inviter names.
    status, body = await firm.hs.as_request(
        "POST",
        f"/_matrix/client/v3/rooms/{room}/invite",
        {
            "id_server": "identity.attacker.example",
            "id_access_token": "x",
            "medium": "email",
            "address": "someone@example.com",
        },
        user_id=pat,
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    # The state event a 3pid invitation leaves, sent by hand: refused too.
    status, body = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.third_party_invite/tok{firm.tag}",
        {"display_name": "s...@example.com", "key_validity_url": "https://x", "public_key": "k"},
        user_id=pat,
    )
    assert status == 403, body
    status, body = await firm.hs.as_request(
        "POST",
        "/_matrix/client/v3/createRoom",
        {
            "initial_state": [
                {
                    "type": "m.room.third_party_invite",
                    "state_key": "tok",
                    "content": {"display_name": "x", "public_key": "k"},
                }
            ]
        },
        user_id=pat,
    )
    assert status == 403, body


async def test_the_room_size_limit_holds_on_the_real_homeserver(firm: Firm) -> None:
    """Nine partners (who may all talk with each other): a room outside matters holds at most
    eight (the default max_group_size), whether they come in the invite list or by /invite one
    at a time; the initial state is no way around it (nor any other way to invite)."""
    names = [f"p{i}" for i in range(9)]
    for i, name in enumerate(names, start=1):
        await firm.person(i, name, "partner")
    for i in range(1, 10):
        await firm.wait_synced("person", i)
    first, *others = (who(firm, n) for n in names)
    create = "/_matrix/client/v3/createRoom"
    status, body = await firm.hs.as_request("POST", create, {"invite": others}, user_id=first)
    assert status == 403 and "at most 8 people" in body["error"], body
    status, made = await firm.hs.as_request("POST", create, {"invite": others[:6]}, user_id=first)
    assert status == 200, made  # seven
    room = quote(made["room_id"])
    status, body = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": others[6]}, user_id=first
    )
    assert status == 200, body  # eight
    status, body = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": others[7]}, user_id=first
    )
    assert status == 403 and "at most 8 people" in body["error"], body
    status, body = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.member/{quote(others[7])}",
        {"membership": "invite"},
        user_id=first,
    )
    assert status == 403, body
    assert others[7] not in (await firm.hs.members(made["room_id"]))
