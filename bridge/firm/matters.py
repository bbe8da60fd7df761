"""Matters as WordPress sends them: who may hold which capacity (the role table), the ethical
wall, the retention schedule and legal hold, and the matter room's alias."""

from __future__ import annotations

import time

import attrs
from mautrix.util.async_db import Connection

from ..audit import store as audit_store
from ..core.model import Capacity, Matter
from ..core.policy import Policy
from ..db import store
from .people import slug
from .validate import BadField, MatterInput

FIELD_OF = {
    Capacity.CLIENT: "clients",
    Capacity.RESPONSIBLE_PARTNER: "responsible_partner",
    Capacity.ASSOCIATE: "associates",
    Capacity.PARALEGAL: "paralegals",
}


async def upsert_matter(
    conn: Connection, wp_id: int, data: MatterInput, policy: Policy, alias_prefix: str
) -> tuple[Matter, bool]:
    """Apply a matter as WordPress sent it; returns (matter, whether anything changed)."""
    held_wall = await store.matter_wall(conn, wp_id)
    wall = held_wall if data.walled_off is None else frozenset(data.walled_off)
    await _check_assignments(conn, data, policy, wall, held_wall)
    old = await store.get_matter(conn, wp_id)
    if old is None and Capacity.CLIENT not in data.assignments.values():
        # A matter is opened for a client. Later it may have none (its client departed) and
        # must still take updates: closing it, a legal hold, new attorneys.
        raise BadField("clients", "a matter needs at least one client")
    held = await audit_store.legal_hold(conn, wp_id)
    await audit_store.save_matter_retention(conn, wp_id, data, time.time())
    if old is not None and held != bool(data.legal_hold):
        await store.bump_generation(conn)  # the homeserver module refuses redactions under a hold
    wall_changed = wall != held_wall
    matter = Matter(
        wp_id=wp_id,
        number=data.number,
        title=data.title,
        privileged=data.privileged,
        status=data.status,
        alias_localpart="",
        assignments=data.assignments,
    )
    if old is None:
        alias = f"{alias_prefix}{slug(data.number, str(wp_id))}"
        if await store.alias_taken(conn, alias):
            alias = f"{alias}-{wp_id}"
        await store.insert_matter(conn, attrs.evolve(matter, alias_localpart=alias))
    else:
        same = (old.number, old.title, old.privileged, old.status, old.assignments) == (
            data.number,
            data.title,
            data.privileged,
            data.status,
            data.assignments,
        )
        if same:
            if wall_changed:
                await store.save_wall(conn, wp_id, wall)
                return await store.must_get_matter(conn, wp_id), True
            return old, False
        await store.update_matter(conn, matter)
    await store.set_assignments(conn, wp_id, data.assignments)
    if wall_changed:
        await store.save_wall(conn, wp_id, wall)
    return await store.must_get_matter(conn, wp_id), True


async def _check_assignments(
    conn: Connection,
    data: MatterInput,
    policy: Policy,
    wall: frozenset[int],
    held_wall: frozenset[int],
) -> None:
    """Everyone assigned exists, is active, may hold their capacity and is not walled off;
    everyone on the wall exists."""
    people = await store.get_people(conn, list(data.assignments))
    if data.walled_off is not None:
        walled = await store.get_people(conn, list(data.walled_off))
        for i, pid in enumerate(data.walled_off):
            if pid not in walled:
                raise BadField(f"walled_off[{i}]", f"no person with WordPress id {pid}")
    for capacity in Capacity:
        ids = [pid for pid, c in data.assignments.items() if c == capacity]
        for i, pid in enumerate(ids):
            field = FIELD_OF[capacity]
            name = field if capacity == Capacity.RESPONSIBLE_PARTNER else f"{field}[{i}]"
            person = people.get(pid)
            if person is None:
                raise BadField(name, f"no person with WordPress id {pid}")
            if not person.active:
                raise BadField(name, f"person {pid} has departed")
            if not policy.may_hold_capacity(person.role, capacity):
                raise BadField(name, f"person {pid} is a {person.role.value}")
            # The ethical wall, whatever WordPress's own checks let through. Lifting a wall
            # and assigning the person are two requests, never one.
            if pid in wall:
                raise BadField(name, f"person {pid} is walled off from this matter")
            if pid in held_wall:
                raise BadField(
                    name,
                    f"person {pid} is walled off from this matter until this request:"
                    " lift the wall in a request of its own first",
                )
