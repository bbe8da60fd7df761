"""v3: Audit trail (hash chain), retention schedules, legal hold."""

from __future__ import annotations

import time

from mautrix.util.async_db import Connection, Scheme

VERSION = 3
DESCRIPTION = "Audit trail (hash chain), retention schedules, legal hold"
# The chain's first previous hash (bridge/audit/chain.py GENESIS), as it was when this ran.
GENESIS = "0" * 64


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    serial = (
        "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    # Written inside the appservice transaction (so exactly once with its txn id); the sealer
    # moves rows to audit_record in one writer order, with the client address attached.
    await conn.execute(f"""
        CREATE TABLE audit_pending (
            id          {serial},
            kind        TEXT NOT NULL,
            event_id    TEXT UNIQUE,
            room_id     TEXT,
            sender      TEXT,
            device_id   TEXT,
            event_type  TEXT,
            state_key   TEXT,
            ts          BIGINT NOT NULL,
            size        BIGINT,
            source      TEXT NOT NULL,
            actor       TEXT,
            detail      TEXT,
            recorded_at BIGINT NOT NULL
        )
    """)
    # The chain: append-only. hash = SHA-256(prev_hash || canonical JSON of the fields); see
    # bridge/audit/chain.py. seq is the storage order and is not hashed, so a record inserted by
    # renumbering its successors is recognised as an insertion rather than as many alterations.
    await conn.execute("""
        CREATE TABLE audit_record (
            seq         BIGINT PRIMARY KEY,
            kind        TEXT NOT NULL,
            event_id    TEXT UNIQUE,
            room_id     TEXT,
            matter_id   BIGINT,
            sender      TEXT,
            device_id   TEXT,
            event_type  TEXT,
            state_key   TEXT,
            ts          BIGINT NOT NULL,
            size        BIGINT,
            client_ip   TEXT,
            user_agent  TEXT,
            source      TEXT NOT NULL,
            actor       TEXT,
            detail      TEXT,
            recorded_at BIGINT NOT NULL,
            prev_hash   TEXT NOT NULL,
            hash        TEXT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX audit_record_room_ts ON audit_record(room_id, ts)")
    await conn.execute("CREATE INDEX audit_record_sender_ts ON audit_record(sender, ts)")
    await conn.execute("CREATE INDEX audit_record_matter_ts ON audit_record(matter_id, ts)")
    await conn.execute("CREATE INDEX audit_record_ts ON audit_record(ts)")
    # The head: the last sealed record. Locked while appending (the single writer order) and
    # compared by verify, so records cut off the end are noticed too.
    await conn.execute("""
        CREATE TABLE audit_head (
            id   INTEGER PRIMARY KEY,
            seq  BIGINT NOT NULL,
            hash TEXT NOT NULL
        )
    """)
    await conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)", GENESIS)
    # Retention values WordPress sent per matter (NULL: the configured default), the legal hold,
    # and when the matter was closed (the after-closing schedule counts from then).
    await conn.execute("""
        CREATE TABLE matter_retention (
            matter_id   BIGINT PRIMARY KEY,
            open_days   DOUBLE PRECISION,
            closed_days DOUBLE PRECISION,
            media_days  DOUBLE PRECISION,
            legal_hold  BOOLEAN NOT NULL DEFAULT false,
            closed_at   DOUBLE PRECISION
        )
    """)
    # Matters closed before this migration count as closed from now on.
    await conn.execute(
        "INSERT INTO matter_retention (matter_id, legal_hold, closed_at)"
        " SELECT wp_id, false, $1 FROM matter WHERE status = 'closed'",
        time.time(),
    )
    # Media seen in unencrypted events: attributed to their room exactly. (Encrypted attachments
    # hide their address from the homeserver and the bridge; see bridge/audit/enforce.py.)
    await conn.execute("""
        CREATE TABLE audit_media (
            media_id TEXT NOT NULL,
            room_id  TEXT NOT NULL,
            event_id TEXT NOT NULL,
            ts       BIGINT NOT NULL,
            PRIMARY KEY (media_id, room_id)
        )
    """)
    # What retention already removed, so a later report does not list it again.
    await conn.execute("""
        CREATE TABLE retention_purged_event (
            event_id  TEXT PRIMARY KEY,
            purged_at BIGINT NOT NULL
        )
    """)
    await conn.execute("""
        CREATE TABLE retention_deleted_media (
            media_id   TEXT PRIMARY KEY,
            deleted_at BIGINT NOT NULL
        )
    """)
