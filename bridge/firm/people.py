"""People as WordPress sends them: who may be whose supervisor or attorney, the Matrix user id
each gets, and what a departure hands to whom."""

from __future__ import annotations

import re
import time
from collections.abc import Set as AbstractSet
from typing import Any

import attrs
from mautrix.util.async_db import Connection

from ..core.model import Capacity, Person, Role
from ..core.policy import successor_for
from ..db import store
from .validate import BadField, PersonInput

ATTORNEY_ROLES = frozenset({Role.PARTNER, Role.ASSOCIATE})
_LOCALPART_BAD = re.compile(r"[^a-z0-9._=\-]+")


def slug(text: str, fallback: str) -> str:
    """A Matrix localpart (or alias) made of a WordPress login or matter number."""
    s = _LOCALPART_BAD.sub("-", text.lower()).strip("-._=")
    return s[:64] or fallback


async def put_person(
    conn: Connection, wp_id: int, data: PersonInput, reserved: set[str]
) -> tuple[Person, bool, dict[str, Any] | None]:
    """A person as WordPress sent them: (person, whether anything changed, the departure when
    this made them inactive). Going inactive is a departure, applied once; a departed person sent
    again as departed is compared like any other upsert."""
    current = await store.get_person(conn, wp_id)
    departing = not data.active and (current is None or current.active)
    person, changed = await upsert_person(
        conn, wp_id, attrs.evolve(data, active=True) if departing else data, reserved
    )
    departure = None
    if departing:
        departure = await depart(conn, wp_id)
        assert departure is not None
        changed = changed or not departure["already_departed"]
    return person, changed, departure


async def upsert_person(
    conn: Connection, wp_id: int, data: PersonInput, reserved: set[str]
) -> tuple[Person, bool]:
    """Apply a person as WordPress sent it; returns (person, whether anything changed)."""
    if data.supervisor is not None:
        await _check_refs(conn, "supervisor", (data.supervisor,), {Role.PARTNER}, wp_id)
    await _check_refs(conn, "attorneys", data.attorneys, ATTORNEY_ROLES, wp_id)
    old = await store.get_person(conn, wp_id)
    if old is None:
        localpart = await _free_localpart(
            conn, slug(data.login, f"person-{wp_id}"), wp_id, reserved
        )
        await store.insert_person(conn, _person(wp_id, data, localpart, data.attorneys))
        person = await store.get_person(conn, wp_id)
        assert person is not None
        return person, True
    new = _person(wp_id, data, old.localpart, tuple(sorted(data.attorneys)))
    if new == old:
        return old, False
    await store.update_person(conn, old, new)
    return new, True


def _person(wp_id: int, data: PersonInput, localpart: str, attorneys: tuple[int, ...]) -> Person:
    return Person(
        wp_id=wp_id,
        login=data.login,
        display_name=data.display_name,
        email=data.email,
        role=data.role,
        active=data.active,
        localpart=localpart,
        supervisor_id=data.supervisor,
        attorney_ids=attorneys,
    )


async def _free_localpart(conn: Connection, wanted: str, wp_id: int, reserved: set[str]) -> str:
    for candidate in (wanted, f"{wanted}-{wp_id}"):
        if candidate in reserved:
            continue
        taken = await store.localpart_owner(conn, candidate)
        if taken is None or taken == wp_id:
            return candidate
    raise BadField("login", "cannot be mapped to a free Matrix user id")


async def _check_refs(
    conn: Connection,
    field: str,
    ids: tuple[int, ...],
    roles: AbstractSet[Role],
    self_id: int | None = None,
) -> None:
    people = await store.get_people(conn, list(ids))
    for i, pid in enumerate(ids):
        name = (
            field
            if len(ids) == 1 and field in ("supervisor", "responsible_partner")
            else f"{field}[{i}]"
        )
        if pid == self_id:
            raise BadField(name, "a person cannot be their own")
        person = people.get(pid)
        if person is None:
            raise BadField(name, f"no person with WordPress id {pid}")
        if not person.active:
            raise BadField(name, f"person {pid} has departed")
        if person.role not in roles:
            allowed = " or ".join(sorted(r.value for r in roles))
            raise BadField(name, f"person {pid} is a {person.role.value}, not a {allowed}")


async def depart(conn: Connection, wp_id: int) -> dict[str, Any] | None:
    """A departure: access ends, and their matters pass to their supervising partner.

    Returns what was done, or None for an unknown person.
    """
    person = await store.get_person(conn, wp_id)
    if person is None:
        return None
    if not person.active:
        return {"successor": None, "matters": [], "walled_off": [], "already_departed": True}
    partners: set[int] = set()
    if person.supervisor_id is not None:
        sup = await store.get_person(conn, person.supervisor_id)
        if sup is not None and sup.active and sup.role == Role.PARTNER:
            partners.add(sup.wp_id)
    successor = successor_for(person.supervisor_id, partners)
    await store.set_departed(conn, wp_id, time.time())
    matters = []
    walled: list[int] = []
    for matter_id, capacity in await store.assignments_of(conn, wp_id):
        matters.append(matter_id)
        if successor is not None and successor in await store.matter_wall(conn, matter_id):
            # The partner who takes over is walled off from this matter: it passes to nobody
            # (WordPress's hand-over does the same; the firm assigns someone else).
            walled.append(matter_id)
        elif successor is not None and capacity != Capacity.CLIENT:
            # The partner takes the matter over in the departing person's place, unless already on it.
            taken = Capacity.ASSOCIATE if capacity == Capacity.PARALEGAL else capacity
            await store.add_assignment_if_absent(conn, matter_id, successor, taken)
        await store.mark_matter_dirty(conn, matter_id)
    await store.remove_assignments_of(conn, wp_id)
    # Clients and paralegals assigned to the departed attorney pass to the successor too.
    for person_id in await store.assigned_to_attorney(conn, wp_id):
        if successor is not None:
            await store.add_attorney_if_absent(conn, person_id, successor)
        await store.mark_person_dirty(conn, person_id)
    await store.remove_attorney(conn, wp_id)
    await store.replace_supervisor(conn, wp_id, successor)
    return {
        "successor": successor,
        "matters": matters,
        "walled_off": walled,
        "already_departed": False,
    }
