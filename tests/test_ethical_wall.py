"""Ethical walls at the bridge, against the real Synapse on SQLite and PostgreSQL: a matter's
wall names people who may never be assigned to it, and the bridge refuses an assignment that
breaks it (400 naming the field, nothing applied) whatever WordPress sends, and does not hand a
walled matter to a walled-off partner on a departure."""

from __future__ import annotations

from typing import Any

from conftest import Firm
from test_reconciler import eventually


async def put_matter(firm: Firm, n: int, **fields: Any) -> tuple[int, Any]:
    body = {"number": f"M-{firm.tag}-{n}", "title": f"Matter {n}", "privileged": False, **fields}
    return await firm.api.put_matter(firm.pid(n), body)


async def test_a_wall_refuses_assignments_whatever_wordpress_sends(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "pia", "partner")
    await firm.person(3, "ann", "associate", supervisor=firm.pid(2))
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    p = firm.pid
    base = {"clients": [p(4)], "responsible_partner": p(1)}
    status, data = await put_matter(firm, 10, **base, walled_off=[p(2), p(3)])
    assert status == 200 and data["walled_off"] == [p(2), p(3)], data
    synced = await firm.wait_synced("matter", 10)
    room = synced["room_id"]

    # Each way of assigning a walled-off person: refused, naming the field.
    for fields, field in (
        ({"associates": [p(2)]}, "associates[0]"),
        ({"associates": [p(1), p(3)], "responsible_partner": p(2)}, "responsible_partner"),
        ({"associates": [p(3)], "walled_off": [p(2), p(3)]}, "associates[0]"),
        # The wall left out of the body, or null: the bridge keeps the one it holds.
        ({"associates": [p(2)], "walled_off": None}, "associates[0]"),
        ({"associates": [p(2)], "walled_off": ...}, "associates[0]"),
        # Lifted and assigned in one request.
        ({"associates": [p(3)], "walled_off": [p(2)]}, "associates[0]"),
        ({"associates": [p(3)], "walled_off": []}, "associates[0]"),
    ):
        body = {**base, **fields}
        if body.get("walled_off") is ...:
            del body["walled_off"]
        status, data = await put_matter(firm, 10, **body)
        assert (status, data.get("errcode"), data.get("field")) == (400, "FIRM_BAD_FIELD", field)
        assert "walled off" in data["error"], data
    status, after = await firm.api.get_matter(p(10))
    assert status == 200
    for key in ("assignments", "walled_off", "members"):
        assert after[key] == synced[key], key
    assert after["sync"]["desired_version"] == synced["sync"]["desired_version"]
    assert await firm.hs.joined(room) == {f"@{firm.login(n)}:firm.test" for n in ("pat", "cal")} | {
        "@firmbridge:firm.test"
    }

    # A person who does not exist cannot be walled off (the wall names people, by id).
    status, data = await put_matter(firm, 10, **base, walled_off=[p(99)])
    assert (status, data.get("field")) == (400, "walled_off[0]"), data

    # The wall lifted in a request of its own, then the assignment: both apply.
    status, data = await put_matter(firm, 10, **base, walled_off=[p(3)])
    assert status == 200 and data["walled_off"] == [p(3)], data
    status, data = await put_matter(firm, 10, **base, associates=[p(2)])
    assert status == 200 and data["walled_off"] == [p(3)], data
    pia = f"@{firm.login('pia')}:firm.test"

    async def pia_joined() -> bool:
        return pia in await firm.hs.joined(room)

    await eventually(pia_joined)


async def test_a_departure_does_not_hand_a_walled_matter_to_the_walled_partner(
    firm: Firm,
) -> None:
    p = firm.pid
    await firm.person(2, "pia", "partner")
    await firm.person(3, "ann", "associate", supervisor=p(2))
    await firm.person(4, "cal", "client", attorneys=[p(3)])
    await firm.person(5, "dee", "client", attorneys=[p(3)])
    # Ann is on both matters; Pia, her supervising partner, is walled off from matter 11.
    status, _ = await put_matter(firm, 11, clients=[p(4)], associates=[p(3)], walled_off=[p(2)])
    assert status == 200
    assert (await put_matter(firm, 12, clients=[p(5)], associates=[p(3)]))[0] == 200
    status, data = await firm.api.deactivate(p(3))
    assert status == 200, data
    assert data["departure"]["successor"] == p(2)
    assert data["departure"]["walled_off"] == [p(11)]
    walled = (await firm.api.get_matter(p(11)))[1]
    assert walled["assignments"] == [
        {"wp_id": p(4), "capacity": "client", "user_id": f"@{firm.login('cal')}:firm.test"}
    ]
    other = (await firm.api.get_matter(p(12)))[1]
    assert {a["wp_id"]: a["capacity"] for a in other["assignments"]} == {
        p(5): "client",
        p(2): "associate",
    }
