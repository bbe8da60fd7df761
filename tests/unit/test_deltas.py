"""Snapshot deltas, case by case: what a delta lists for each kind of change, and that the view
the module builds from it is the view of the whole snapshot (the property over random changes is
in tests/test_snapshot_delta.py)."""

from __future__ import annotations

import copy
from typing import Any

from bridge.core.firm_view import FirmView
from bridge.core.model import Capacity, MatterStatus
from bridge.core.snapshot_delta import delta, index


def snapshot() -> dict[str, Any]:
    return {
        "generation": 1,
        "bridge_user": "@firmbridge:firm.test",
        "people": [
            {"wp_id": 1, "user_id": "@pat:firm.test", "login": "pat", "role": "partner"}
            | {"active": True, "supervisor": None, "attorneys": []},
            {"wp_id": 2, "user_id": "@cal:firm.test", "login": "cal", "role": "client"}
            | {"active": True, "supervisor": None, "attorneys": ["@pat:firm.test"]},
        ],
        "matters": [
            {
                "wp_id": 10,
                "room_id": "!a:firm.test",
                "privileged": False,
                "status": "open",
                "assignments": {
                    "@pat:firm.test": "responsible_partner",
                    "@cal:firm.test": "client",
                },
            }
        ],
        "policy": {"max_group_size": 8},
    }


def applied(base: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], FirmView]:
    d = delta(index(base), new, index(new))
    body = {**d, "generation": new["generation"], "bridge_user": new["bridge_user"]}
    view = FirmView.from_snapshot(base).apply(body)
    whole = FirmView.from_snapshot(new)
    assert dict(view.people) == dict(whole.people)
    assert sorted(view.matters, key=lambda m: m.wp_id) == sorted(
        whole.matters, key=lambda m: m.wp_id
    )
    assert dict(view.by_room) == dict(whole.by_room)
    assert view.generation == new["generation"]
    return d, view


def test_nothing_changed_is_an_empty_delta() -> None:
    base = snapshot()
    new = {**copy.deepcopy(base), "generation": 2}
    d, _ = applied(base, new)
    assert d == {
        "delta": True,
        "base_generation": 1,
        "people": [],
        "removed_people": [],
        "matters": [],
        "removed_matters": [],
    }


def test_a_changed_entry_is_sent_whole_and_alone() -> None:
    base = snapshot()
    new = copy.deepcopy(base)
    new["generation"] = 2
    new["matters"][0]["status"] = "closed"
    new["matters"][0]["assignments"]["@ann:firm.test"] = "associate"
    d, view = applied(base, new)
    assert d["matters"] == [new["matters"][0]] and d["people"] == []
    assert view.by_room["!a:firm.test"].status == MatterStatus.CLOSED
    assert view.by_room["!a:firm.test"].assignments["@ann:firm.test"] == Capacity.ASSOCIATE


def test_key_order_is_not_a_change() -> None:
    base = snapshot()
    new = copy.deepcopy(base)
    new["generation"] = 2
    new["people"][0] = dict(reversed(list(new["people"][0].items())))
    d, _ = applied(base, new)
    assert d["people"] == []


def test_added_and_removed_entries() -> None:
    base = snapshot()
    new = copy.deepcopy(base)
    new["generation"] = 3
    new["people"].pop(1)  # cal is gone
    new["people"].append(
        {"wp_id": 3, "user_id": "@ann:firm.test", "login": "ann", "role": "associate"}
        | {"active": True, "supervisor": "@pat:firm.test", "attorneys": []}
    )
    new["matters"] = [{**new["matters"][0], "wp_id": 11, "room_id": None}]
    d, view = applied(base, new)
    assert [p["user_id"] for p in d["people"]] == ["@ann:firm.test"]
    assert d["removed_people"] == ["@cal:firm.test"]
    assert d["removed_matters"] == [10] and [m["wp_id"] for m in d["matters"]] == [11]
    assert "@cal:firm.test" not in view.people and view.by_room == {}
    assert view.people["@ann:firm.test"].supervisor == "@pat:firm.test"


def test_the_policy_is_sent_only_when_it_changed() -> None:
    base = snapshot()
    new = copy.deepcopy(base)
    new["generation"] = 2
    assert "policy" not in delta(index(base), new, index(new))
    new["policy"] = {"max_group_size": 4}
    assert delta(index(base), new, index(new))["policy"] == {"max_group_size": 4}


def test_a_departure_reaches_the_view() -> None:
    base = snapshot()
    new = copy.deepcopy(base)
    new["generation"] = 2
    new["people"][1]["active"] = False
    _, view = applied(base, new)
    assert not view.people["@cal:firm.test"].active
    unchanged = FirmView.from_snapshot(base).people["@pat:firm.test"]
    assert view.people["@pat:firm.test"] == unchanged
