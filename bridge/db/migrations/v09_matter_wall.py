"""v9: Ethical walls: people who may never be assigned to a matter."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 9
DESCRIPTION = "Ethical walls: people who may never be assigned to a matter"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    await conn.execute("""
        CREATE TABLE matter_wall (
            matter_id BIGINT NOT NULL REFERENCES matter(wp_id) ON DELETE CASCADE,
            person_id BIGINT NOT NULL REFERENCES person(wp_id) ON DELETE CASCADE,
            PRIMARY KEY (matter_id, person_id)
        )
    """)
