"""v10: Notices: unread windows, pending notices, preferences. State lives here, so a restart
loses nothing."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 10
DESCRIPTION = "Notices: unread windows, pending notices, preferences"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # Rooms where someone sent a message not yet turned into windows for its members; one row
    # per room and sender however many messages (hits tells the worker that more came).
    await conn.execute("""
        CREATE TABLE notify_activity (
            room_id  TEXT NOT NULL,
            sender   TEXT NOT NULL,
            first_ts BIGINT NOT NULL,
            hits     BIGINT NOT NULL,
            PRIMARY KEY (room_id, sender)
        )
    """)
    # One row per person who has, or had, something waiting. due_at: when to ask the
    # homeserver next (NULL: no window open). touched counts the messages that opened or joined
    # the window, so a check that raced a new message does not close the window under it.
    # covered_until: messages up to then (ms) were covered by the last notice. notice_id: a
    # notice decided and not yet confirmed by WordPress (sent again, same id, until it is).
    await conn.execute("""
        CREATE TABLE notify_person (
            wp_id          BIGINT PRIMARY KEY,
            due_at         DOUBLE PRECISION,
            touched        BIGINT NOT NULL DEFAULT 0,
            check_attempts INTEGER NOT NULL DEFAULT 0,
            covered_until  BIGINT NOT NULL DEFAULT 0,
            notice_id      TEXT,
            notice_body    TEXT,
            send_at        DOUBLE PRECISION,
            send_attempts  INTEGER NOT NULL DEFAULT 0,
            last_error     TEXT
        )
    """)
    await conn.execute("CREATE INDEX notify_person_due ON notify_person(due_at)")
    await conn.execute("CREATE INDEX notify_person_send ON notify_person(send_at)")
    # What each person chose on their WordPress profile (no row: e-mail after the firm's delay).
    await conn.execute("""
        CREATE TABLE notify_pref (
            wp_id         BIGINT PRIMARY KEY,
            email         BOOLEAN NOT NULL,
            delay_seconds INTEGER
        )
    """)
