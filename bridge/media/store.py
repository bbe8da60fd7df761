"""The media tables: files uploaded through the gateway, and where cleartext events posted them."""

from __future__ import annotations

from typing import Any

from mautrix.util.async_db import Connection, Database

from ..core.firm_view import FirmView, MatterFacts, PersonFacts
from ..core.model import Capacity, MatterStatus, Role
from .policy import MediaRecord, Posting


async def get_media(db: Database, server_name: str, media_id: str) -> MediaRecord | None:
    row = await db.fetchrow(
        "SELECT uploader, encrypted, room_id, room_event FROM media"
        " WHERE server_name = $1 AND media_id = $2",
        server_name,
        media_id,
    )
    if row is None:
        return None
    return MediaRecord(row["uploader"], bool(row["encrypted"]), row["room_id"], row["room_event"])


async def add_media(
    db: Database,
    server_name: str,
    media_id: str,
    *,
    uploader: str,
    encrypted: bool,
    content_type: str,
    size: int,
    uploaded_at: float,
    room_id: str | None = None,
    room_event: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO media (server_name, media_id, uploader, encrypted, content_type, size,"
        " uploaded_at, room_id, room_event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (server_name, media_id) DO NOTHING",
        server_name,
        media_id,
        uploader,
        encrypted,
        content_type,
        size,
        uploaded_at,
        room_id,
        room_event,
    )


async def postings(db: Database, server_name: str, media_id: str) -> list[Posting]:
    rows = await db.fetch(
        "SELECT room_id, event_id, sender, posted_at, legit FROM media_posting"
        " WHERE server_name = $1 AND media_id = $2 ORDER BY posted_at",
        server_name,
        media_id,
    )
    return [
        Posting(
            r["room_id"],
            r["event_id"],
            r["sender"],
            r["posted_at"],
            None if r["legit"] is None else bool(r["legit"]),
        )
        for r in rows
    ]


async def set_legit(
    db: Database, server_name: str, media_id: str, verdicts: dict[str, bool]
) -> None:
    # Only undecided rows: a verdict, once reached, stands (see policy.judge_postings).
    for event_id, legit in verdicts.items():
        await db.execute(
            "UPDATE media_posting SET legit = $4"
            " WHERE server_name = $1 AND media_id = $2 AND event_id = $3 AND legit IS NULL",
            server_name,
            media_id,
            event_id,
            legit,
        )


async def firm_rooms(db: Database) -> set[str]:
    """The rooms the bridge manages: today the matter rooms. Add other firm rooms here when the
    bridge makes them (DMs, scheduling rooms)."""
    rows = await db.fetch("SELECT room_id FROM matter WHERE room_id IS NOT NULL")
    return {r["room_id"] for r in rows}


async def add_posting(
    conn: Connection | Any,
    server_name: str,
    media_id: str,
    *,
    event_id: str,
    room_id: str,
    sender: str,
    posted_at: float,
) -> None:
    await conn.execute(
        "INSERT INTO media_posting (server_name, media_id, event_id, room_id, sender, posted_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (server_name, media_id, event_id) DO NOTHING",
        server_name,
        media_id,
        event_id,
        room_id,
        sender,
        posted_at,
    )


async def forget_event(conn: Connection | Any, event_id: str, room_id: str, sender: str) -> None:
    """A redaction by the posting's own sender, in its room, removes the posting. Others are
    not believed: the homeserver passes on redactions it does not apply (anyone may send one,
    in any room, naming any event id)."""
    await conn.execute(
        "DELETE FROM media_posting WHERE event_id = $1 AND room_id = $2 AND sender = $3",
        event_id,
        room_id,
        sender,
    )


async def firm_view_of(
    db: Database, domain: str, bridge_user: str, user_ids: list[str]
) -> FirmView:
    """The firm as it concerns these people only: who they are, their supervisors and
    attorneys, and the matters they are assigned to (with their own assignments). Enough for
    the role table's questions about pairs of them; one read per table."""
    suffix = f":{domain}"
    localparts = sorted({u[1:].removesuffix(suffix) for u in user_ids if u.endswith(suffix)})
    if not localparts:
        return FirmView(0, bridge_user, {}, ())
    marks = ", ".join(f"${i}" for i in range(1, len(localparts) + 1))
    rows = await db.fetch(
        "SELECT p.wp_id, p.login, p.localpart, p.display_name, p.role, p.active,"
        " s.localpart AS supervisor FROM person p LEFT JOIN person s ON s.wp_id = p.supervisor_id"
        f" WHERE p.localpart IN ({marks})",
        *localparts,
    )
    ids = {r["wp_id"]: f"@{r['localpart']}{suffix}" for r in rows}
    if not ids:
        return FirmView(0, bridge_user, {}, ())
    wp_marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    attorneys: dict[int, list[str]] = {}
    for r in await db.fetch(
        "SELECT a.person_id, p.localpart FROM person_attorney a"
        f" JOIN person p ON p.wp_id = a.attorney_id WHERE a.person_id IN ({wp_marks})",
        *ids,
    ):
        attorneys.setdefault(r["person_id"], []).append(f"@{r['localpart']}{suffix}")
    people = {
        ids[r["wp_id"]]: PersonFacts(
            user_id=ids[r["wp_id"]],
            wp_id=r["wp_id"],
            login=r["login"],
            role=Role(r["role"]),
            active=bool(r["active"]),
            supervisor=f"@{r['supervisor']}{suffix}" if r["supervisor"] else None,
            attorneys=frozenset(attorneys.get(r["wp_id"], ())),
            display_name=r["display_name"],
        )
        for r in rows
    }
    matters: dict[int, tuple[Any, dict[str, Capacity]]] = {}
    for r in await db.fetch(
        "SELECT a.matter_id, a.person_id, a.capacity, m.room_id, m.privileged, m.status"
        f" FROM matter_assignment a JOIN matter m ON m.wp_id = a.matter_id"
        f" WHERE a.person_id IN ({wp_marks})",
        *ids,
    ):
        _, assigned = matters.setdefault(r["matter_id"], (r, {}))
        assigned[ids[r["person_id"]]] = Capacity(r["capacity"])
    return FirmView(
        0,
        bridge_user,
        people,
        tuple(
            MatterFacts(
                wp_id=matter_id,
                room_id=row["room_id"],
                privileged=bool(row["privileged"]),
                status=MatterStatus(row["status"]),
                assignments=assigned,
            )
            for matter_id, (row, assigned) in matters.items()
        ),
    )
