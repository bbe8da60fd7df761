"""v2: Firm state generation and the policy sent from WordPress."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 2
DESCRIPTION = "Firm state generation and the policy sent from WordPress"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # One counter bumped with every change the homeserver module must see (people, assignments,
    # rooms, policy), so the module re-reads the firm's state only when it changed.
    await conn.execute("""
        CREATE TABLE firm_state (
            id         INTEGER PRIMARY KEY,
            generation BIGINT NOT NULL,
            policy     TEXT
        )
    """)
    await conn.execute("INSERT INTO firm_state (id, generation, policy) VALUES (0, 1, NULL)")
