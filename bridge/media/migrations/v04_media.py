"""v4: Media gateway: uploads and where cleartext events posted them."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 4
DESCRIPTION = "Media gateway: uploads and where cleartext events posted them"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/media (issue 6). media: files uploaded through the gateway, with their
    # uploader (encrypted ones are governed by who shares a firm room with the uploader).
    # media_posting: cleartext events that referred to a file; legit stays NULL until the
    # gateway first judges whether the sender could see the file (bridge/media/policy.py).
    await conn.execute("""
        CREATE TABLE media (
            server_name  TEXT NOT NULL,
            media_id     TEXT NOT NULL,
            uploader     TEXT NOT NULL,
            encrypted    BOOLEAN NOT NULL,
            content_type TEXT NOT NULL,
            size         BIGINT NOT NULL,
            uploaded_at  DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (server_name, media_id)
        )
    """)
    await conn.execute("""
        CREATE TABLE media_posting (
            server_name TEXT NOT NULL,
            media_id    TEXT NOT NULL,
            event_id    TEXT NOT NULL,
            room_id     TEXT NOT NULL,
            sender      TEXT NOT NULL,
            posted_at   DOUBLE PRECISION NOT NULL,
            legit       BOOLEAN,
            PRIMARY KEY (server_name, media_id, event_id)
        )
    """)
    await conn.execute("CREATE INDEX media_posting_event ON media_posting(event_id)")
