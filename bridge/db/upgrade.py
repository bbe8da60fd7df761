"""Versioned schema migrations (mautrix UpgradeTable); each runs in one transaction."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme, UpgradeTable

upgrade_table = UpgradeTable()


@upgrade_table.register(description="Desired state, reconcile bookkeeping, dedupe tables")  # type: ignore[call-arg, arg-type]
async def upgrade_v1(conn: Connection, scheme: Scheme) -> None:
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


@upgrade_table.register(description="Firm state generation and the policy sent from WordPress")  # type: ignore[call-arg, arg-type]
async def upgrade_v2(conn: Connection, scheme: Scheme) -> None:
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


@upgrade_table.register(description="Audit trail (hash chain), retention schedules, legal hold")  # type: ignore[call-arg, arg-type]
async def upgrade_v3(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/audit (issue 5); the tables are described there.
    from ..audit.schema import create_tables

    await create_tables(conn, scheme)


@upgrade_table.register(description="Media gateway: uploads and where cleartext events posted them")  # type: ignore[call-arg, arg-type]
async def upgrade_v4(conn: Connection, scheme: Scheme) -> None:
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


@upgrade_table.register(description="Audit: the matter each room was created for")  # type: ignore[call-arg, arg-type]
async def upgrade_v5(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/audit: a matter room's first events are sealed with its matter even when
    # they arrive before the reconciler has saved the room (bridge/audit/records.py).
    await conn.execute("""
        CREATE TABLE audit_room_matter (
            room_id   TEXT PRIMARY KEY,
            matter_id BIGINT NOT NULL
        )
    """)


@upgrade_table.register(description="Media gateway: the room an upload was made for")  # type: ignore[call-arg, arg-type]
async def upgrade_v6(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/media: an upload made with org.firm.room_id is served only to those who
    # can see that room's event that was newest when it was uploaded (room_event); NULL for
    # uploads without it, which keep the uploader rule (bridge/media/policy.py).
    await conn.execute("ALTER TABLE media ADD COLUMN room_id TEXT")
    await conn.execute("ALTER TABLE media ADD COLUMN room_event TEXT")


@upgrade_table.register(description="Appservice transactions: keyed by id and body hash")  # type: ignore[call-arg, arg-type]
async def upgrade_v7(conn: Connection, scheme: Scheme) -> None:
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


@upgrade_table.register(description="Audit: hashes of each event for verifiable transcripts")  # type: ignore[call-arg, arg-type]
async def upgrade_v8(conn: Connection, scheme: Scheme) -> None:
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


@upgrade_table.register(description="Ethical walls: people who may never be assigned to a matter")  # type: ignore[call-arg, arg-type]
async def upgrade_v9(conn: Connection, scheme: Scheme) -> None:
    await conn.execute("""
        CREATE TABLE matter_wall (
            matter_id BIGINT NOT NULL REFERENCES matter(wp_id) ON DELETE CASCADE,
            person_id BIGINT NOT NULL REFERENCES person(wp_id) ON DELETE CASCADE,
            PRIMARY KEY (matter_id, person_id)
        )
    """)


@upgrade_table.register(description="Notices: unread windows, pending notices, preferences")  # type: ignore[call-arg, arg-type]
async def upgrade_v10(conn: Connection, scheme: Scheme) -> None:
    # Owned by bridge/notify (issue 13); the tables are described there.
    from ..notify.schema import create_tables

    await create_tables(conn, scheme)
