"""The firm as the homeserver module sees it: who is who, who is assigned to what.

Pure data with indexes, built from the bridge's snapshot; the policy evaluator asks it questions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .model import Capacity, MatterStatus, Role

ATTORNEY_CAPACITIES = frozenset({Capacity.RESPONSIBLE_PARTNER, Capacity.ASSOCIATE})


@attrs.define(frozen=True)
class PersonFacts:
    user_id: str
    wp_id: int
    login: str
    role: Role
    active: bool
    supervisor: str | None = None
    attorneys: frozenset[str] = frozenset()
    display_name: str | None = None  # the name the firm gave them, shown in every room


@attrs.define(frozen=True)
class MatterFacts:
    wp_id: int
    room_id: str | None
    privileged: bool
    status: MatterStatus
    assignments: Mapping[str, Capacity]  # user id -> capacity
    legal_hold: bool = False  # nothing of the matter may be deleted, redactions included


@attrs.define(frozen=True)
class FirmView:
    generation: int
    bridge_user: str
    people: Mapping[str, PersonFacts]
    matters: tuple[MatterFacts, ...]
    by_room: Mapping[str, MatterFacts] = attrs.field(init=False)
    by_person: Mapping[str, tuple[MatterFacts, ...]] = attrs.field(init=False)
    by_login: Mapping[str, PersonFacts] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        by_person: dict[str, list[MatterFacts]] = {}
        for m in self.matters:
            for uid in m.assignments:
                by_person.setdefault(uid, []).append(m)
        object.__setattr__(self, "by_room", {m.room_id: m for m in self.matters if m.room_id})
        object.__setattr__(self, "by_person", {k: tuple(v) for k, v in by_person.items()})
        object.__setattr__(self, "by_login", {p.login.lower(): p for p in self.people.values()})

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> FirmView:
        return cls(
            generation=data["generation"],
            bridge_user=data["bridge_user"],
            people={p["user_id"]: _person(p) for p in data["people"]},
            matters=tuple(_matter(m) for m in data["matters"]),
        )

    def apply(self, delta: Mapping[str, Any]) -> FirmView:
        """This view with a delta from the bridge applied (snapshot_delta.py)."""
        people = dict(self.people)
        for uid in delta["removed_people"]:
            people.pop(uid, None)
        people.update((p["user_id"], _person(p)) for p in delta["people"])
        matters = {m.wp_id: m for m in self.matters}
        for wp_id in delta["removed_matters"]:
            matters.pop(wp_id, None)
        matters.update((m["wp_id"], _matter(m)) for m in delta["matters"])
        return FirmView(
            generation=delta["generation"],
            bridge_user=delta["bridge_user"],
            people=people,
            matters=tuple(matters.values()),
        )

    def shared_matters(self, a: str, b: str) -> list[MatterFacts]:
        theirs = {id(m) for m in self.by_person.get(b, ())}
        return [m for m in self.by_person.get(a, ()) if id(m) in theirs]

    def is_attorney_of(self, attorney: str, other: str, non_privileged_only: bool = False) -> bool:
        """Whether `attorney` is assigned to `other` (a client or paralegal) by WordPress or a matter."""
        person = self.people.get(other)
        if person is not None and attorney in person.attorneys:
            return True
        return any(
            m.assignments[attorney] in ATTORNEY_CAPACITIES
            and not (non_privileged_only and m.privileged)
            for m in self.shared_matters(attorney, other)
        )


def _person(p: Mapping[str, Any]) -> PersonFacts:
    return PersonFacts(
        user_id=p["user_id"],
        wp_id=p["wp_id"],
        login=p["login"],
        role=Role(p["role"]),
        active=bool(p["active"]),
        supervisor=p.get("supervisor"),
        attorneys=frozenset(p.get("attorneys", ())),
        display_name=p.get("display_name"),
    )


def _matter(m: Mapping[str, Any]) -> MatterFacts:
    return MatterFacts(
        wp_id=m["wp_id"],
        room_id=m.get("room_id"),
        privileged=bool(m["privileged"]),
        status=MatterStatus(m["status"]),
        assignments={uid: Capacity(c) for uid, c in m["assignments"].items()},
        legal_hold=bool(m.get("legal_hold", False)),
    )
