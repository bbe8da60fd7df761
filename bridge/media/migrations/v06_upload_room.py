"""v6: Media gateway: the room an upload was made for."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 6
DESCRIPTION = "Media gateway: the room an upload was made for"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/media: an upload made with org.firm.room_id is served only to those who
    # can see that room's event that was newest when it was uploaded (room_event); NULL for
    # uploads without it, which keep the uploader rule (bridge/media/policy.py).
    await conn.execute("ALTER TABLE media ADD COLUMN room_id TEXT")
    await conn.execute("ALTER TABLE media ADD COLUMN room_event TEXT")
