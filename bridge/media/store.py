"""The media tables: files uploaded through the gateway, and where cleartext events posted them."""

from __future__ import annotations

from typing import Any

from mautrix.util.async_db import Connection, Database

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
