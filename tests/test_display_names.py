"""People appear in every room under the name the firm gave them: the homeserver module refuses
a membership event that shows another name, whether sent by hand or by a profile change, and
lets the bridge's renames through."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from conftest import DOMAIN, Firm


async def shown_name(firm: Firm, room: str, user_id: str) -> str | None:
    state = await firm.hs.room_state(room)
    return state[("m.room.member", user_id)].get("displayname")


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

    # Through the profile: Synapse takes the profile, but no room shows the name.
    status, body = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/profile/{quote(cy)}/displayname",
        {"displayname": "Pam (Partner)"},
        user_id=cy,
    )
    assert status == 200, body
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
