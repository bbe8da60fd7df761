"""v7: Appservice transactions: keyed by id and body hash."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 7
DESCRIPTION = "Appservice transactions: keyed by id and body hash"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # A restarted homeserver may number transactions from 1 again (Synapse on SQLite): the same
    # id with other content is a new transaction (bridge/appservice.py). Ids kept from before
    # have no hash ('' matches none), so one of them reused is applied; the audit and the media
    # index ignore an event they already hold.
    await conn.execute("""
        CREATE TABLE appservice_txn_v7 (
            txn_id      TEXT NOT NULL,
            body_hash   TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (txn_id, body_hash)
        )
    """)
    await conn.execute(
        "INSERT INTO appservice_txn_v7 (txn_id, body_hash, received_at)"
        " SELECT txn_id, '', received_at FROM appservice_txn"
    )
    await conn.execute("DROP TABLE appservice_txn")
    await conn.execute("ALTER TABLE appservice_txn_v7 RENAME TO appservice_txn")
    await conn.execute("CREATE INDEX appservice_txn_age ON appservice_txn(received_at)")
