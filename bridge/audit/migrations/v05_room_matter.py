"""v5: Audit: the matter each room was created for."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 5
DESCRIPTION = "Audit: the matter each room was created for"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/audit: a matter room's first events are sealed with its matter even when
    # they arrive before the reconciler has saved the room (bridge/audit/records.py).
    await conn.execute("""
        CREATE TABLE audit_room_matter (
            room_id   TEXT PRIMARY KEY,
            matter_id BIGINT NOT NULL
        )
    """)
