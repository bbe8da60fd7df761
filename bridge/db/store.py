"""Desired state: people, matters and assignments as WordPress sent them.

Every write happens inside the caller's transaction and bumps `desired_version` on each row whose
homeserver state must change, so the reconciler (level-triggered) picks it up.
"""

from __future__ import annotations

import re
import time
from typing import Any

from mautrix.util.async_db import Connection

from ..audit.store import save_matter_retention
from ..core.model import Capacity, Matter, MatterStatus, Person, Role
from ..core.policy import Policy
from ..provisioning.validate import BadField, MatterInput, PersonInput

_LOCALPART_BAD = re.compile(r"[^a-z0-9._=\-]+")


def slug(text: str, fallback: str) -> str:
    s = _LOCALPART_BAD.sub("-", text.lower()).strip("-._=")
    return s[:64] or fallback


async def _mark(conn: Connection, table: str, wp_id: int) -> None:
    assert table in ("person", "matter")
    await conn.execute(
        f"UPDATE {table} SET desired_version = desired_version + 1,"
        " dirty_since = COALESCE(dirty_since, $2), next_attempt = 0, attempts = 0"
        " WHERE wp_id = $1",
        wp_id,
        time.time(),
    )
    await bump_generation(conn)


async def bump_generation(conn: Connection) -> None:
    """Tell the homeserver module the firm's state changed (it re-reads it within seconds)."""
    await conn.execute("UPDATE firm_state SET generation = generation + 1 WHERE id = 0")


async def mark_matter_dirty(conn: Connection, wp_id: int) -> None:
    await _mark(conn, "matter", wp_id)


async def mark_person_dirty(conn: Connection, wp_id: int) -> None:
    await _mark(conn, "person", wp_id)


def _person(row: Any, attorneys: tuple[int, ...] = ()) -> Person:
    return Person(
        wp_id=row["wp_id"],
        login=row["login"],
        display_name=row["display_name"],
        email=row["email"],
        role=Role(row["role"]),
        active=bool(row["active"]),
        localpart=row["localpart"],
        supervisor_id=row["supervisor_id"],
        attorney_ids=attorneys,
    )


async def get_person(conn: Connection, wp_id: int) -> Person | None:
    row = await conn.fetchrow("SELECT * FROM person WHERE wp_id = $1", wp_id)
    if row is None:
        return None
    rows = await conn.fetch(
        "SELECT attorney_id FROM person_attorney WHERE person_id = $1 ORDER BY attorney_id", wp_id
    )
    return _person(row, tuple(r["attorney_id"] for r in rows))


async def get_people(conn: Connection, ids: list[int]) -> dict[int, Person]:
    if not ids:
        return {}
    marks = ", ".join(f"${i + 1}" for i in range(len(ids)))
    rows = await conn.fetch(f"SELECT * FROM person WHERE wp_id IN ({marks})", *ids)
    return {r["wp_id"]: _person(r) for r in rows}


async def person_sync_row(conn: Connection, wp_id: int) -> Any:
    return await conn.fetchrow(
        "SELECT desired_version, synced_version, registered, attempts, last_error, departed_at"
        " FROM person WHERE wp_id = $1",
        wp_id,
    )


async def _unique_localpart(conn: Connection, wanted: str, wp_id: int, reserved: set[str]) -> str:
    for candidate in (wanted, f"{wanted}-{wp_id}"):
        if candidate in reserved:
            continue
        taken = await conn.fetchval("SELECT wp_id FROM person WHERE localpart = $1", candidate)
        if taken is None or taken == wp_id:
            return candidate
    raise BadField("login", "cannot be mapped to a free Matrix user id")


async def _check_refs(
    conn: Connection, field: str, ids: tuple[int, ...], roles: set[Role], self_id: int | None = None
) -> None:
    people = await get_people(conn, list(ids))
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


async def upsert_person(
    conn: Connection, wp_id: int, data: PersonInput, reserved: set[str]
) -> tuple[Person, bool]:
    """Apply a person as WordPress sent it; returns (person, whether anything changed)."""
    attorney_roles = {Role.PARTNER, Role.ASSOCIATE}
    if data.supervisor is not None:
        await _check_refs(conn, "supervisor", (data.supervisor,), {Role.PARTNER}, wp_id)
    await _check_refs(conn, "attorneys", data.attorneys, attorney_roles, wp_id)
    old = await get_person(conn, wp_id)
    if old is None:
        localpart = await _unique_localpart(
            conn, slug(data.login, f"person-{wp_id}"), wp_id, reserved
        )
        await conn.execute(
            "INSERT INTO person (wp_id, login, display_name, email, role, supervisor_id, active,"
            " localpart, dirty_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            wp_id,
            data.login,
            data.display_name,
            data.email,
            data.role.value,
            data.supervisor,
            data.active,
            localpart,
            time.time(),
        )
        for aid in data.attorneys:
            await conn.execute(
                "INSERT INTO person_attorney (person_id, attorney_id) VALUES ($1, $2)", wp_id, aid
            )
        await bump_generation(conn)
        person = await get_person(conn, wp_id)
        assert person is not None
        return person, True
    new = Person(
        wp_id=wp_id,
        login=data.login,
        display_name=data.display_name,
        email=data.email,
        role=data.role,
        active=data.active,
        localpart=old.localpart,
        supervisor_id=data.supervisor,
        attorney_ids=tuple(sorted(data.attorneys)),
    )
    if new == old:
        return old, False
    await conn.execute(
        "UPDATE person SET login = $2, display_name = $3, email = $4, role = $5,"
        " supervisor_id = $6, active = $7, departed_at = CASE WHEN $7 THEN NULL ELSE departed_at END"
        " WHERE wp_id = $1",
        wp_id,
        data.login,
        data.display_name,
        data.email,
        data.role.value,
        data.supervisor,
        data.active,
    )
    if new.attorney_ids != old.attorney_ids:
        await conn.execute("DELETE FROM person_attorney WHERE person_id = $1", wp_id)
        for aid in new.attorney_ids:
            await conn.execute(
                "INSERT INTO person_attorney (person_id, attorney_id) VALUES ($1, $2)", wp_id, aid
            )
    await mark_person_dirty(conn, wp_id)
    if (new.role, new.active) != (old.role, old.active):
        # Membership and power levels of every matter they are assigned to follow the role.
        for row in await conn.fetch(
            "SELECT matter_id FROM matter_assignment WHERE person_id = $1", wp_id
        ):
            await mark_matter_dirty(conn, row["matter_id"])
    return new, True


async def deactivate_person(conn: Connection, wp_id: int) -> dict[str, Any] | None:
    """A departure: access ends, and their matters pass to their supervising partner.

    Returns what was done, or None for an unknown person.
    """
    person = await get_person(conn, wp_id)
    if person is None:
        return None
    if not person.active:
        return {"successor": None, "matters": [], "walled_off": [], "already_departed": True}
    successor = None
    if person.supervisor_id is not None:
        sup = await get_person(conn, person.supervisor_id)
        if sup is not None and sup.active and sup.role == Role.PARTNER:
            successor = sup.wp_id
    now = time.time()
    await conn.execute(
        "UPDATE person SET active = false, departed_at = $2 WHERE wp_id = $1", wp_id, now
    )
    await mark_person_dirty(conn, wp_id)
    matters = []
    walled: list[int] = []
    for row in await conn.fetch(
        "SELECT matter_id, capacity FROM matter_assignment WHERE person_id = $1 ORDER BY matter_id",
        wp_id,
    ):
        matters.append(row["matter_id"])
        capacity = Capacity(row["capacity"])
        if successor is not None and successor in await matter_wall(conn, row["matter_id"]):
            # The partner who takes over is walled off from this matter: it passes to nobody
            # (WordPress's hand-over does the same; the firm assigns someone else).
            walled.append(row["matter_id"])
        elif successor is not None and capacity != Capacity.CLIENT:
            # The partner takes the matter over in the departing person's place, unless already on it.
            taken = Capacity.ASSOCIATE if capacity == Capacity.PARALEGAL else capacity
            await conn.execute(
                "INSERT INTO matter_assignment (matter_id, person_id, capacity) VALUES ($1, $2, $3)"
                " ON CONFLICT (matter_id, person_id) DO NOTHING",
                row["matter_id"],
                successor,
                taken.value,
            )
        await mark_matter_dirty(conn, row["matter_id"])
    await conn.execute("DELETE FROM matter_assignment WHERE person_id = $1", wp_id)
    # Clients and paralegals assigned to the departed attorney pass to the successor too.
    for row in await conn.fetch(
        "SELECT person_id FROM person_attorney WHERE attorney_id = $1", wp_id
    ):
        if successor is not None:
            await conn.execute(
                "INSERT INTO person_attorney (person_id, attorney_id) VALUES ($1, $2)"
                " ON CONFLICT (person_id, attorney_id) DO NOTHING",
                row["person_id"],
                successor,
            )
        await mark_person_dirty(conn, row["person_id"])
    await conn.execute("DELETE FROM person_attorney WHERE attorney_id = $1", wp_id)
    await conn.execute(
        "UPDATE person SET supervisor_id = $2 WHERE supervisor_id = $1", wp_id, successor
    )
    return {
        "successor": successor,
        "matters": matters,
        "walled_off": walled,
        "already_departed": False,
    }


async def get_matter(conn: Connection, wp_id: int) -> Matter | None:
    row = await conn.fetchrow("SELECT * FROM matter WHERE wp_id = $1", wp_id)
    if row is None:
        return None
    rows = await conn.fetch(
        "SELECT person_id, capacity FROM matter_assignment WHERE matter_id = $1", wp_id
    )
    return Matter(
        wp_id=row["wp_id"],
        number=row["number"],
        title=row["title"],
        privileged=bool(row["privileged"]),
        status=MatterStatus(row["status"]),
        alias_localpart=row["alias_localpart"],
        room_id=row["room_id"],
        assignments={r["person_id"]: Capacity(r["capacity"]) for r in rows},
        walled_off=await matter_wall(conn, wp_id),
    )


async def matter_wall(conn: Connection, wp_id: int) -> frozenset[int]:
    rows = await conn.fetch("SELECT person_id FROM matter_wall WHERE matter_id = $1", wp_id)
    return frozenset(r["person_id"] for r in rows)


async def matter_sync_row(conn: Connection, wp_id: int) -> Any:
    return await conn.fetchrow(
        "SELECT desired_version, synced_version, attempts, last_error FROM matter WHERE wp_id = $1",
        wp_id,
    )


async def upsert_matter(
    conn: Connection, wp_id: int, data: MatterInput, policy: Policy, alias_prefix: str
) -> tuple[Matter, bool]:
    field_of = {
        Capacity.CLIENT: "clients",
        Capacity.RESPONSIBLE_PARTNER: "responsible_partner",
        Capacity.ASSOCIATE: "associates",
        Capacity.PARALEGAL: "paralegals",
    }
    people = await get_people(conn, list(data.assignments))
    held_wall = await matter_wall(conn, wp_id)
    wall = held_wall if data.walled_off is None else frozenset(data.walled_off)
    if data.walled_off is not None:
        walled = await get_people(conn, list(data.walled_off))
        for i, pid in enumerate(data.walled_off):
            if pid not in walled:
                raise BadField(f"walled_off[{i}]", f"no person with WordPress id {pid}")
    for capacity in Capacity:
        ids = [pid for pid, c in data.assignments.items() if c == capacity]
        for i, pid in enumerate(ids):
            field = field_of[capacity]
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
    old = await get_matter(conn, wp_id)
    if old is None and Capacity.CLIENT not in data.assignments.values():
        # A matter is opened for a client. Later it may have none (its client departed) and
        # must still take updates: closing it, a legal hold, new attorneys.
        raise BadField("clients", "a matter needs at least one client")
    held = await conn.fetchval("SELECT legal_hold FROM matter_retention WHERE matter_id = $1", wp_id)
    await save_matter_retention(conn, wp_id, data, time.time())
    if old is not None and bool(held) != bool(data.legal_hold):
        await bump_generation(conn)  # the homeserver module refuses redactions under a hold
    wall_changed = wall != held_wall
    if old is None:
        alias = f"{alias_prefix}{slug(data.number, str(wp_id))}"
        if await conn.fetchval("SELECT 1 FROM matter WHERE alias_localpart = $1", alias):
            alias = f"{alias}-{wp_id}"
        await conn.execute(
            "INSERT INTO matter (wp_id, number, title, privileged, status, alias_localpart,"
            " dirty_since) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            wp_id,
            data.number,
            data.title,
            data.privileged,
            data.status.value,
            alias,
            time.time(),
        )
        changed = True
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
                await _save_wall(conn, wp_id, wall)
                return await _matter(conn, wp_id), True
            return old, False
        await conn.execute(
            "UPDATE matter SET number = $2, title = $3, privileged = $4, status = $5"
            " WHERE wp_id = $1",
            wp_id,
            data.number,
            data.title,
            data.privileged,
            data.status.value,
        )
        await conn.execute("DELETE FROM matter_assignment WHERE matter_id = $1", wp_id)
        await mark_matter_dirty(conn, wp_id)
        changed = True
    for pid, capacity in data.assignments.items():
        await conn.execute(
            "INSERT INTO matter_assignment (matter_id, person_id, capacity) VALUES ($1, $2, $3)",
            wp_id,
            pid,
            capacity.value,
        )
    if wall_changed:
        await _save_wall(conn, wp_id, wall)
    return await _matter(conn, wp_id), changed


async def _matter(conn: Connection, wp_id: int) -> Matter:
    matter = await get_matter(conn, wp_id)
    assert matter is not None
    return matter


async def _save_wall(conn: Connection, wp_id: int, wall: frozenset[int]) -> None:
    await conn.execute("DELETE FROM matter_wall WHERE matter_id = $1", wp_id)
    for pid in sorted(wall):
        await conn.execute(
            "INSERT INTO matter_wall (matter_id, person_id) VALUES ($1, $2)", wp_id, pid
        )


async def claim_request_id(conn: Connection, request_id: str, now: float, window: float) -> bool:
    """Record a provisioning request id; False if it was seen before (a replay)."""
    await conn.execute("DELETE FROM provisioning_request WHERE received_at < $1", now - 2 * window)
    seen = await conn.fetchval(
        "SELECT 1 FROM provisioning_request WHERE request_id = $1", request_id
    )
    if seen:
        return False
    await conn.execute(
        "INSERT INTO provisioning_request (request_id, received_at) VALUES ($1, $2)",
        request_id,
        now,
    )
    return True


async def generation(conn: Connection) -> int:
    return await conn.fetchval("SELECT generation FROM firm_state WHERE id = 0")


async def stored_policy(conn: Connection) -> str | None:
    return await conn.fetchval("SELECT policy FROM firm_state WHERE id = 0")


async def store_policy(conn: Connection, policy_json: str) -> int:
    """Keep the policy WordPress sent; every matter's room is re-checked against it."""
    await conn.execute("UPDATE firm_state SET policy = $1 WHERE id = 0", policy_json)
    await bump_generation(conn)
    rows = await conn.fetch("SELECT wp_id FROM matter")
    for row in rows:
        await mark_matter_dirty(conn, row["wp_id"])
    return len(rows)


async def snapshot(conn: Connection, domain: str) -> dict[str, Any]:
    """Everything the homeserver module decides with: people, their relations, matters, rooms."""
    attorneys: dict[int, list[int]] = {}
    for r in await conn.fetch("SELECT person_id, attorney_id FROM person_attorney"):
        attorneys.setdefault(r["person_id"], []).append(r["attorney_id"])
    rows = await conn.fetch(
        "SELECT wp_id, login, localpart, display_name, role, active, supervisor_id FROM person"
    )
    mxid = {r["wp_id"]: f"@{r['localpart']}:{domain}" for r in rows}
    people = [
        {
            "wp_id": r["wp_id"],
            "user_id": mxid[r["wp_id"]],
            "login": r["login"],
            "display_name": r["display_name"],
            "role": r["role"],
            "active": bool(r["active"]),
            "supervisor": mxid.get(r["supervisor_id"]),
            "attorneys": sorted(mxid[a] for a in attorneys.get(r["wp_id"], []) if a in mxid),
        }
        for r in rows
    ]
    assignments: dict[int, dict[str, str]] = {}
    for r in await conn.fetch("SELECT matter_id, person_id, capacity FROM matter_assignment"):
        assignments.setdefault(r["matter_id"], {})[mxid[r["person_id"]]] = r["capacity"]
    matters = [
        {
            "wp_id": r["wp_id"],
            "room_id": r["room_id"],
            "privileged": bool(r["privileged"]),
            "status": r["status"],
            "assignments": assignments.get(r["wp_id"], {}),
            "legal_hold": bool(r["legal_hold"]),
        }
        for r in await conn.fetch(
            "SELECT m.wp_id, m.room_id, m.privileged, m.status, r.legal_hold FROM matter m"
            " LEFT JOIN matter_retention r ON r.matter_id = m.wp_id"
        )
    ]
    return {"people": people, "matters": matters}
