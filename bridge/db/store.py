"""Desired state: people, matters and assignments as WordPress sent them, in SQL.

Every write happens inside the caller's transaction and bumps `desired_version` on each row whose
homeserver state must change, so the reconciler (level-triggered) picks it up. What may be
written (who may hold which capacity, walls, successors) is decided above, in bridge/firm/.
"""

from __future__ import annotations

import time
from typing import Any

from mautrix.util.async_db import Connection

from ..core.model import Capacity, Matter, MatterStatus, Person, Role


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


async def localpart_owner(conn: Connection, localpart: str) -> int | None:
    return await conn.fetchval("SELECT wp_id FROM person WHERE localpart = $1", localpart)


async def insert_person(conn: Connection, person: Person) -> None:
    await conn.execute(
        "INSERT INTO person (wp_id, login, display_name, email, role, supervisor_id, active,"
        " localpart, dirty_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        person.wp_id,
        person.login,
        person.display_name,
        person.email,
        person.role.value,
        person.supervisor_id,
        person.active,
        person.localpart,
        time.time(),
    )
    for aid in person.attorney_ids:
        await conn.execute(
            "INSERT INTO person_attorney (person_id, attorney_id) VALUES ($1, $2)",
            person.wp_id,
            aid,
        )
    await bump_generation(conn)


async def update_person(conn: Connection, old: Person, new: Person) -> None:
    wp_id = new.wp_id
    await conn.execute(
        "UPDATE person SET login = $2, display_name = $3, email = $4, role = $5,"
        " supervisor_id = $6, active = $7, departed_at = CASE WHEN $7 THEN NULL ELSE departed_at END"
        " WHERE wp_id = $1",
        wp_id,
        new.login,
        new.display_name,
        new.email,
        new.role.value,
        new.supervisor_id,
        new.active,
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


async def set_departed(conn: Connection, wp_id: int, now: float) -> None:
    await conn.execute(
        "UPDATE person SET active = false, departed_at = $2 WHERE wp_id = $1", wp_id, now
    )
    await mark_person_dirty(conn, wp_id)


async def assignments_of(conn: Connection, wp_id: int) -> list[tuple[int, Capacity]]:
    """(matter, capacity) of each matter the person is assigned to, by matter."""
    rows = await conn.fetch(
        "SELECT matter_id, capacity FROM matter_assignment WHERE person_id = $1 ORDER BY matter_id",
        wp_id,
    )
    return [(r["matter_id"], Capacity(r["capacity"])) for r in rows]


async def add_assignment_if_absent(
    conn: Connection, matter_id: int, person_id: int, capacity: Capacity
) -> None:
    await conn.execute(
        "INSERT INTO matter_assignment (matter_id, person_id, capacity) VALUES ($1, $2, $3)"
        " ON CONFLICT (matter_id, person_id) DO NOTHING",
        matter_id,
        person_id,
        capacity.value,
    )


async def remove_assignments_of(conn: Connection, wp_id: int) -> None:
    await conn.execute("DELETE FROM matter_assignment WHERE person_id = $1", wp_id)


async def assigned_to_attorney(conn: Connection, attorney_id: int) -> list[int]:
    """The clients and paralegals WordPress assigned to this attorney."""
    rows = await conn.fetch(
        "SELECT person_id FROM person_attorney WHERE attorney_id = $1", attorney_id
    )
    return [r["person_id"] for r in rows]


async def add_attorney_if_absent(conn: Connection, person_id: int, attorney_id: int) -> None:
    await conn.execute(
        "INSERT INTO person_attorney (person_id, attorney_id) VALUES ($1, $2)"
        " ON CONFLICT (person_id, attorney_id) DO NOTHING",
        person_id,
        attorney_id,
    )


async def remove_attorney(conn: Connection, attorney_id: int) -> None:
    await conn.execute("DELETE FROM person_attorney WHERE attorney_id = $1", attorney_id)


async def replace_supervisor(conn: Connection, old_id: int, new_id: int | None) -> None:
    await conn.execute(
        "UPDATE person SET supervisor_id = $2 WHERE supervisor_id = $1", old_id, new_id
    )


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


async def alias_taken(conn: Connection, alias_localpart: str) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM matter WHERE alias_localpart = $1", alias_localpart)
    )


async def insert_matter(conn: Connection, matter: Matter) -> None:
    """The matter's row; its assignments and wall are set apart."""
    await conn.execute(
        "INSERT INTO matter (wp_id, number, title, privileged, status, alias_localpart,"
        " dirty_since) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        matter.wp_id,
        matter.number,
        matter.title,
        matter.privileged,
        matter.status.value,
        matter.alias_localpart,
        time.time(),
    )
    # Its assignments are in the module's snapshot from now on (who may talk with whom), not
    # only once the reconciler has made its room.
    await bump_generation(conn)


async def update_matter(conn: Connection, matter: Matter) -> None:
    """The matter's row, its assignments cleared for set_assignments; marked to reconcile."""
    await conn.execute(
        "UPDATE matter SET number = $2, title = $3, privileged = $4, status = $5 WHERE wp_id = $1",
        matter.wp_id,
        matter.number,
        matter.title,
        matter.privileged,
        matter.status.value,
    )
    await conn.execute("DELETE FROM matter_assignment WHERE matter_id = $1", matter.wp_id)
    await mark_matter_dirty(conn, matter.wp_id)


async def set_assignments(conn: Connection, wp_id: int, assignments: dict[int, Capacity]) -> None:
    for pid, capacity in assignments.items():
        await conn.execute(
            "INSERT INTO matter_assignment (matter_id, person_id, capacity) VALUES ($1, $2, $3)",
            wp_id,
            pid,
            capacity.value,
        )


async def must_get_matter(conn: Connection, wp_id: int) -> Matter:
    matter = await get_matter(conn, wp_id)
    assert matter is not None
    return matter


async def save_wall(conn: Connection, wp_id: int, wall: frozenset[int]) -> None:
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
