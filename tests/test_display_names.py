"""People appear in every room under the name the firm gave them: the homeserver module refuses
a membership event that shows another name, whether sent by hand or by a profile change, and
lets the bridge's renames through."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
from conftest import DOMAIN, Firm


async def shown_name(firm: Firm, room: str, user_id: str) -> str | None:
    state = await firm.hs.room_state(room)
    return state[("m.room.member", user_id)].get("displayname")


async def global_name(firm: Firm, user_id: str) -> str | None:
    """The person's global display name, as they read it (only people who share a room with
    them may)."""
    status, body = await firm.hs.as_request(
        "GET", f"/_matrix/client/v3/profile/{quote(user_id)}", user_id=user_id
    )
    assert status == 200, body
    return body.get("displayname")


async def test_nobody_shows_themselves_under_another_name(firm: Firm) -> None:
    await firm.person(1, "pam", "partner")
    await firm.person(4, "cy", "client")
    await firm.matter(10, clients=[4], responsible_partner=1)
    room = (await firm.wait_synced("matter", 10))["room_id"]
    await firm.wait_synced("person", 4)
    cy = f"@{firm.login('cy')}:{DOMAIN}"
    assert await shown_name(firm, room, cy) == "Cy"
    member = f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.member/{quote(cy)}"

    # By hand: a membership event under a partner's name is refused; under their own, taken.
    status, body = await firm.hs.as_request(
        "PUT", member, {"membership": "join", "displayname": "Pam (Partner)"}, user_id=cy
    )
    assert status == 403, body
    status, body = await firm.hs.as_request(
        "PUT", member, {"membership": "join", "displayname": "Cy"}, user_id=cy
    )
    assert status == 200, body

    # Through the global profile: refused (enable_set_displayname: false), in any form.
    profile = f"/_matrix/client/v3/profile/{quote(cy)}"
    for method, path, body in (
        ("PUT", profile + "/displayname", {"displayname": "Pam (Partner)"}),
        ("DELETE", profile + "/displayname", None),
    ):
        status, answer = await firm.hs.as_request(method, path, body, user_id=cy)
        assert status == 403, (method, answer)
    assert await global_name(firm, cy) == "Cy"
    await asyncio.sleep(0.5)
    assert await shown_name(firm, room, cy) == "Cy"

    # The firm renames them: every room follows.
    await firm.person(4, "cy", "client", display_name="Cyrus Young")
    await firm.wait_synced("person", 4)
    for _ in range(100):
        if await shown_name(firm, room, cy) == "Cyrus Young":
            break
        await asyncio.sleep(0.1)
    assert await shown_name(firm, room, cy) == "Cyrus Young"
    # The bridge's rename is the global name too (set through the module).
    assert await global_name(firm, cy) == "Cyrus Young"


async def test_profiles_only_for_people_who_share_a_room(firm: Firm) -> None:
    # A client could list the firm's clients ("Amy Park (Northwind Logistics)") through
    # /profile, and tell who exists by 404s.
    await firm.person(1, "pam", "partner")
    await firm.person(4, "cy", "client")
    await firm.person(5, "amy", "client")
    await firm.matter(10, clients=[4], responsible_partner=1)
    await firm.wait_synced("matter", 10)
    await firm.wait_synced("person", 5)
    cy, amy, pam = (f"@{firm.login(n)}:{DOMAIN}" for n in ("cy", "amy", "pam"))
    nobody = f"@nobody{firm.tag}:{DOMAIN}"
    answers = {}
    for target in (amy, nobody, pam):
        for tail in ("", "/displayname"):
            status, body = await firm.hs.as_request(
                "GET", f"/_matrix/client/v3/profile/{quote(target)}{tail}", user_id=cy
            )
            answers[(target, tail)] = (status, body.get("errcode"))
    # Another client and someone who does not exist look the same; her partner, with whom she
    # shares the matter's room, is readable.
    assert answers[(amy, "")] == answers[(nobody, "")] == (403, "M_FORBIDDEN"), answers
    assert answers[(amy, "/displayname")] == (403, "M_FORBIDDEN"), answers
    assert answers[(pam, "")][0] == 200, answers
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{firm.hs.url}/_matrix/client/v3/profile/{quote(pam)}") as r,
    ):
        assert r.status == 401  # not without logging in
