"""v1: Desired state, reconcile bookkeeping, dedupe tables."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

VERSION = 1
DESCRIPTION = "Desired state, reconcile bookkeeping, dedupe tables"


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # desired_version is bumped in the same transaction as every change to a row's desired state;
    # the reconciler records the version it converged to in synced_version. A row is dirty while
    # they differ, so a crash loses nothing: the next start picks the dirty rows up again.
    await conn.execute("""
        CREATE TABLE person (
            wp_id           BIGINT PRIMARY KEY,
            login           TEXT NOT NULL,
            display_name    TEXT NOT NULL,
            email           TEXT NOT NULL DEFAULT '',
            role            TEXT NOT NULL,
            supervisor_id   BIGINT,
            active          BOOLEAN NOT NULL DEFAULT true,
            localpart       TEXT NOT NULL UNIQUE,
            registered      BOOLEAN NOT NULL DEFAULT false,
            departed_at     DOUBLE PRECISION,
            desired_version BIGINT NOT NULL DEFAULT 1,
            synced_version  BIGINT NOT NULL DEFAULT 0,
            dirty_since     DOUBLE PRECISION,
            next_attempt    DOUBLE PRECISION NOT NULL DEFAULT 0,
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT
        )
    """)
    await conn.execute("""
        CREATE TABLE person_attorney (
            person_id   BIGINT NOT NULL REFERENCES person(wp_id) ON DELETE CASCADE,
            attorney_id BIGINT NOT NULL REFERENCES person(wp_id) ON DELETE CASCADE,
            PRIMARY KEY (person_id, attorney_id)
        )
    """)
    await conn.execute("""
        CREATE TABLE matter (
            wp_id           BIGINT PRIMARY KEY,
            number          TEXT NOT NULL,
            title           TEXT NOT NULL,
            privileged      BOOLEAN NOT NULL,
            status          TEXT NOT NULL,
            alias_localpart TEXT NOT NULL UNIQUE,
            room_id         TEXT UNIQUE,
            desired_version BIGINT NOT NULL DEFAULT 1,
            synced_version  BIGINT NOT NULL DEFAULT 0,
            dirty_since     DOUBLE PRECISION,
            next_attempt    DOUBLE PRECISION NOT NULL DEFAULT 0,
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT
        )
    """)
    # capacity: client, responsible_partner, associate, paralegal (what WordPress assigned).
    await conn.execute("""
        CREATE TABLE matter_assignment (
            matter_id BIGINT NOT NULL REFERENCES matter(wp_id) ON DELETE CASCADE,
            person_id BIGINT NOT NULL REFERENCES person(wp_id) ON DELETE CASCADE,
            capacity  TEXT NOT NULL,
            PRIMARY KEY (matter_id, person_id)
        )
    """)
    await conn.execute("CREATE INDEX matter_assignment_person ON matter_assignment(person_id)")
    # Transactions from the homeserver and provisioning requests, applied once each.
    await conn.execute("""
        CREATE TABLE appservice_txn (
            txn_id      TEXT PRIMARY KEY,
            received_at DOUBLE PRECISION NOT NULL
        )
    """)
    await conn.execute("""
        CREATE TABLE provisioning_request (
            request_id  TEXT PRIMARY KEY,
            received_at DOUBLE PRECISION NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX provisioning_request_age ON provisioning_request(received_at)")
