"""Deltas of the firm's state: the module's view with deltas applied is the view of the whole
snapshot, after any sequence of changes (pure), and the bridge serves them over its internal
API (a real bridge, the real endpoint the module reads)."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
from conftest import MODULE_SECRET, Firm

from bridge.core.firm_view import FirmView
from bridge.core.snapshot_delta import delta, index

ROLES = ["partner", "associate", "paralegal", "client", "assistant"]
CAPACITIES = ["client", "responsible_partner", "associate", "paralegal"]


def _person(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "wp_id": n,
        "user_id": f"@p{n}:firm.test",
        "login": f"P{n}",
        "role": rng.choice(ROLES),
        "active": rng.random() > 0.1,
        "supervisor": None,
        "attorneys": [],
    }


def _mutate(rng: random.Random, data: dict[str, Any]) -> None:
    people, matters = data["people"], data["matters"]
    ids = [p["user_id"] for p in people]
    what = rng.randrange(7)
    if what == 0:
        people.append(_person(rng, 1000 + rng.randrange(10**6)))
    elif what == 1 and people:
        people.pop(rng.randrange(len(people)))
    elif what == 2 and people:
        p = rng.choice(people)
        p.update(active=not p["active"], attorneys=rng.sample(ids, min(2, len(ids))))
    elif what == 3:
        matters.append(
            {
                "wp_id": rng.randrange(10**6),
                "room_id": None,
                "privileged": rng.random() < 0.3,
                "status": "open",
                "assignments": {},
            }
        )
    elif what == 4 and matters:
        m = rng.choice(matters)
        m["room_id"] = m["room_id"] or f"!r{m['wp_id']}:firm.test"
        m["assignments"] = {u: rng.choice(CAPACITIES) for u in rng.sample(ids, min(3, len(ids)))}
    elif what == 5 and matters:
        m = rng.choice(matters)
        m["status"] = "closed" if m["status"] == "open" else "open"
        m["assignments"].pop(next(iter(m["assignments"]), None), None)  # and then back, maybe
    elif what == 6:
        data["policy"] = {"max_group_size": rng.randrange(2, 10)}
    # Unique ids, as the bridge's tables have them.
    data["people"] = list({p["user_id"]: p for p in people}.values())
    data["matters"] = list({m["wp_id"]: m for m in matters}.values())


def _same(a: FirmView, b: FirmView) -> None:
    assert (a.generation, a.bridge_user) == (b.generation, b.bridge_user)
    assert dict(a.people) == dict(b.people)
    assert {m.wp_id: m for m in a.matters} == {m.wp_id: m for m in b.matters}
    assert dict(a.by_room) == dict(b.by_room)
    assert dict(a.by_login) == dict(b.by_login)
    assert {k: {m.wp_id for m in v} for k, v in a.by_person.items()} == {
        k: {m.wp_id for m in v} for k, v in b.by_person.items()
    }


def test_deltas_applied_give_the_whole_snapshot_view() -> None:
    import copy

    rng = random.Random(5)
    data: dict[str, Any] = {
        "generation": 1,
        "bridge_user": "@bridge:firm.test",
        "people": [_person(rng, n) for n in range(20)],
        "matters": [],
        "policy": {"max_group_size": 8},
    }
    history = [(copy.deepcopy(data), index(data))]
    views = {1: FirmView.from_snapshot(data)}
    for generation in range(2, 400):
        for _ in range(rng.randrange(1, 4)):
            _mutate(rng, data)
        data["generation"] = generation
        current = index(data)
        # From a base some generations back, as a module that missed a few would ask.
        base_data, base = history[max(0, len(history) - rng.randrange(1, 5))]
        d = delta(base, data, current)
        d.update(generation=generation, bridge_user=data["bridge_user"])
        applied = views[base.generation].apply(d)
        _same(applied, FirmView.from_snapshot(data))
        assert ("policy" in d) == (base_data["policy"] != data["policy"])
        assert len(d["people"]) + len(d["matters"]) <= len(data["people"]) + len(data["matters"])
        history.append((copy.deepcopy(data), current))
        views[generation] = applied


async def test_bridge_serves_deltas_to_the_module(firm: Firm) -> None:
    url = f"http://127.0.0.1:{firm.hs.bridge_port}/_firm/internal/v1/snapshot"
    auth = {"Authorization": f"Bearer {MODULE_SECRET}"}
    await firm.person(1, "pam", "partner")
    await firm.person(4, "cy", "client")
    await firm.matter(10, clients=[4], responsible_partner=1)
    await firm.wait_synced("matter", 10)
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.get(url) as r:
            assert r.status == 200
            first = await r.json()
        assert not first.get("delta")
        view = FirmView.from_snapshot(first)
        etag = first["etag"]
        async with s.get(url, params={"since": etag}, headers={"If-None-Match": etag}) as r:
            assert r.status == 304  # nothing changed

        await firm.person(2, "ada", "associate")
        await firm.matter(10, clients=[4], responsible_partner=1, associates=[2])
        async with s.get(url, params={"since": etag}, headers={"If-None-Match": etag}) as r:
            assert r.status == 200
            d = await r.json()
        async with s.get(url) as r:
            whole = await r.json()
    assert d["delta"] and d["base_generation"] == first["generation"]
    assert d["generation"] == whole["generation"] > first["generation"]
    # Only what changed: the new associate and the matter naming her (and no policy).
    assert [p["user_id"] for p in d["people"]] == [f"@{firm.login('ada')}:firm.test"]
    assert [m["wp_id"] for m in d["matters"]] == [firm.pid(10)]
    assert d["removed_people"] == [] and d["removed_matters"] == [] and "policy" not in d
    _same(view.apply(d), FirmView.from_snapshot(whole))
    # A base this bridge did not serve (another run's ETag) gets the whole snapshot.
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.get(url, params={"since": "0000." + str(first["generation"])}) as r:
            other = await r.json()
    assert not other.get("delta") and len(other["people"]) == len(whole["people"])
