"""Conversations outside matters follow the relationship that allowed them (from a penetration
test): when an attorney is taken off a client's matters, their direct conversation stops at once
(the homeserver module refuses sends between the pair) and the reconciler removes them from each
other (the room and its history stay; the audit records the removal). Redactions: nothing of a
matter on legal hold, and never a room's encryption."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

from conftest import DOMAIN, Firm
from test_reconciler import eventually


def who(firm: Firm, name: str) -> str:
    return f"@{firm.login(name)}:{DOMAIN}"


async def send(firm: Firm, room: str, user: str, text: str = "hello") -> tuple[int, dict]:
    return await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{uuid.uuid4().hex}",
        {"msgtype": "m.text", "body": text},
        user_id=user,
    )


async def direct_room(firm: Firm, a: str, b: str) -> str:
    status, made = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"invite": [b], "is_direct": True}, user_id=a
    )
    assert status == 200, made
    room = made["room_id"]
    status, body = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{quote(room)}/join", {}, user_id=b
    )
    assert status == 200, body
    return room


async def test_conversation_ends_with_the_relationship(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "pia", "partner")
    await firm.person(4, "cal", "client")
    await firm.matter(10, clients=[4], responsible_partner=1)
    await firm.wait_synced("matter", 10)
    pat, pia, cal = who(firm, "pat"), who(firm, "pia"), who(firm, "cal")
    dm = await direct_room(firm, cal, pat)
    colleagues = await direct_room(firm, pat, pia)
    sent = []
    for sender in (cal, pat):
        status, body = await send(firm, dm, sender)
        assert status == 200, body
        sent.append(body["event_id"])

    # The reconciler is held, so what the module does alone shows: Pat is taken off Cal's only
    # matter, and the pair may no longer talk.
    await firm.bridge.reconciler.stop()
    await firm.matter(10, clients=[4], responsible_partner=2)

    async def refused() -> bool:
        return all([(await send(firm, dm, s))[0] == 403 for s in (cal, pat)])

    await eventually(refused, timeout=10, interval=0.25)
    status, body = await send(firm, dm, cal)
    assert "does not let" in body["error"], body
    status, body = await send(firm, colleagues, pat)  # still allowed: unaffected
    assert status == 200, body

    # The reconciler re-checks the conversations of everyone in the matter: Pat leaves (the
    # firm's member; her client keeps the room); the room stays, with its history; the
    # colleagues' room is left alone.
    firm.bridge.reconciler.start()

    async def removed() -> bool:
        return await firm.hs.joined(dm) == {cal}

    await eventually(removed, timeout=30)
    assert (await firm.hs.members(dm))[pat] == "leave"
    messages = await firm.hs.admin_get(
        f"/_synapse/admin/v1/rooms/{quote(dm)}/messages?dir=b&limit=50"
    )
    assert set(sent) <= {e["event_id"] for e in messages["chunk"]}
    assert await firm.hs.joined(colleagues) == {pat, pia}
    status, body = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{quote(dm)}/invite", {"user_id": pat}, user_id=cal
    )
    assert status == 403, body  # and she cannot bring him back

    async def audited() -> list:
        return await firm.bridge.db.fetch(
            "SELECT actor, detail FROM audit_record WHERE kind = 'conversation_removal'"
            " AND room_id = $1",
            dm,
        )

    rows = await eventually(audited, timeout=15)
    assert len(rows) == 1 and rows[0]["actor"] == "reconciler"
    detail = json.loads(rows[0]["detail"])
    assert detail["removed"] == [pat]
    assert detail["pairs"][0]["people"] == sorted([cal, pat])


async def test_group_conversation_loses_only_whom_it_must(firm: Firm) -> None:
    # Pat (partner) with her client Cal and her associate Ann; Cal stops being Pat's client.
    # Ann is Cal's attorney through a matter and may still talk with her: Pat leaves (a firm
    # member before a client), Ann and Cal go on.
    await firm.person(1, "pat", "partner")
    await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    await firm.person(3, "pia", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[4], responsible_partner=3, associates=[2])
    await firm.wait_synced("matter", 10)
    pat, ann, cal = who(firm, "pat"), who(firm, "ann"), who(firm, "cal")
    status, made = await firm.hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"invite": [ann, cal]}, user_id=pat
    )
    assert status == 200, made
    room = made["room_id"]
    for user in (ann, cal):
        status, body = await firm.hs.as_request(
            "POST", f"/_matrix/client/v3/rooms/{quote(room)}/join", {}, user_id=user
        )
        assert status == 200, body
    await firm.person(4, "cal", "client", attorneys=[])

    async def settled() -> bool:
        return await firm.hs.joined(room) == {ann, cal}

    await eventually(settled, timeout=30)
    for user in (ann, cal):
        status, body = await send(firm, room, user)
        assert status == 200, body


async def test_redactions_under_legal_hold_and_of_encryption(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[4], responsible_partner=1)
    room = (await firm.wait_synced("matter", 10))["room_id"]
    pat, cal = who(firm, "pat"), who(firm, "cal")

    async def redact(room_id: str, event_id: str, user: str) -> tuple[int, dict]:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}"
        return await firm.hs.as_request(
            "PUT",
            f"{path}/{uuid.uuid4().hex}",
            {"reason": "typo"},
            user_id=user,
        )

    first = (await send(firm, room, cal, "first"))[1]["event_id"]
    second = (await send(firm, room, cal, "second"))[1]["event_id"]
    status, body = await redact(room, first, cal)
    assert status == 200, body  # no hold yet: people may take back their own messages

    await firm.matter(10, clients=[4], responsible_partner=1, legal_hold=True)

    async def held() -> bool:
        return (await redact(room, second, cal))[0] == 403

    await eventually(held, timeout=10, interval=0.25)
    status, body = await redact(room, second, cal)
    assert "legal hold" in body["error"], body
    # Lifted: allowed again.
    await firm.matter(10, clients=[4], responsible_partner=1, legal_hold=False)

    async def lifted() -> bool:
        return (await redact(room, second, cal))[0] == 200

    await eventually(lifted, timeout=10, interval=0.25)

    # In a room of her own, a client cannot redact the room's encryption (or its settings).
    dm = await direct_room(firm, cal, pat)
    state = await firm.hs.admin_get(f"/_synapse/admin/v1/rooms/{quote(dm)}/state")
    ids = {(e["type"], e["state_key"]): e["event_id"] for e in state["state"]}
    status, body = await redact(dm, ids[("m.room.encryption", "")], cal)
    assert status == 403 and "encryption" in body["error"], body
    status, body = await redact(dm, ids[("m.room.join_rules", "")], cal)
    assert status == 403, body
    after = await firm.hs.room_state(dm)
    assert after[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
