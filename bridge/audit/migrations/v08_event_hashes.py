"""v8: Audit: hashes of each event for verifiable transcripts."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 8
DESCRIPTION = "Audit: hashes of each event for verifiable transcripts"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/audit and bridge/export (issue 11): the SHA-256 of each event's canonical
    # JSON and of its redacted form, and what a redaction removes (bridge/audit/chain.py,
    # OPTIONAL_FIELDS). Records sealed before stay without them and are reported as unhashed.
    for table in ("audit_pending", "audit_record"):
        for column in ("event_hash", "redacted_hash", "redacts"):
            await conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    await conn.execute("CREATE INDEX audit_record_redacts ON audit_record(redacts)")
    # Each room's version, from its create event: the redacted form of state events depends on it.
    await conn.execute("""
        CREATE TABLE audit_room_version (
            room_id      TEXT PRIMARY KEY,
            room_version TEXT NOT NULL
        )
    """)
