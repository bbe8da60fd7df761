"""SQL for the audit trail. Every function runs on a connection the caller holds.

Appending is serialized: `append` first takes the writer lock (an UPDATE of the head row, which
locks that row on PostgreSQL and takes SQLite's write lock before anything is read), then reads
the previous hash inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from mautrix.util.async_db import Connection, Database, Scheme

from . import chain
from .records import sealed_record

PENDING_COLS = (
    "kind",
    "event_id",
    "room_id",
    "sender",
    "device_id",
    "event_type",
    "state_key",
    "ts",
    "size",
    "source",
    "actor",
    "detail",
    "recorded_at",
    *chain.OPTIONAL_FIELDS,
)
RECORD_COLS = ("seq", *chain.FIELDS, *chain.OPTIONAL_FIELDS, "prev_hash", "hash")
_PG_TYPES = {c: "bigint" if c in ("ts", "size", "recorded_at") else "text" for c in PENDING_COLS}
CHUNK = 500


def acquire(db: Database) -> AbstractAsyncContextManager[Connection]:
    """A connection outside any transaction (typed: mautrix's acquire is not)."""
    return db.acquire()  # type: ignore[return-value]


def marks(n: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + n))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def add_pending(conn: Connection, rows: Sequence[dict]) -> None:
    """Queue rows for the chain; an event already queued is not queued twice."""
    if not rows:
        return
    if conn.scheme == Scheme.POSTGRES:
        # One statement with a column of values each: far fewer round trips than executemany.
        columns = [[r.get(c) for r in rows] for c in PENDING_COLS]
        casts = ", ".join(f"${i + 1}::{_PG_TYPES[c]}[]" for i, c in enumerate(PENDING_COLS))
        await conn.execute(
            f"INSERT INTO audit_pending ({', '.join(PENDING_COLS)}) SELECT * FROM unnest({casts})"
            " ON CONFLICT (event_id) DO NOTHING",
            *columns,
        )
        return
    await conn.executemany(
        f"INSERT INTO audit_pending ({', '.join(PENDING_COLS)}) VALUES ({marks(len(PENDING_COLS))})"
        " ON CONFLICT (event_id) DO NOTHING",
        [tuple(r.get(c) for c in PENDING_COLS) for r in rows],
    )


async def add_media(conn: Connection, items: Sequence[tuple[str, str, str, int]]) -> None:
    if items:
        await conn.executemany(
            "INSERT INTO audit_media (media_id, room_id, event_id, ts) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (media_id, room_id) DO NOTHING",
            list(items),
        )


async def pending_batch(conn: Connection, limit: int) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT id, {', '.join(PENDING_COLS)} FROM audit_pending ORDER BY id LIMIT $1", limit
    )
    return [dict(r) for r in rows]


async def pending_count(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT COUNT(*) FROM audit_pending"))


async def head(conn: Connection) -> tuple[int, str]:
    row = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
    assert row is not None, "audit_head is made by the migration"
    return int(row["seq"]), str(row["hash"])


async def _existing(conn: Connection, sql: str, values: Sequence[Any], pg_type: str) -> set[Any]:
    """Which of `values` a `... IN ({})` query finds: one array query on PostgreSQL, chunks of
    placeholders on SQLite."""
    if not values:
        return set()
    if conn.scheme == Scheme.POSTGRES:
        rows = await conn.fetch(sql.format(f"SELECT unnest($1::{pg_type}[])"), list(values))
        return {r[0] for r in rows}
    found: set[Any] = set()
    for part in _chunks(list(values)):
        found.update(r[0] for r in await conn.fetch(sql.format(marks(len(part))), *part))
    return found


async def add_room_versions(conn: Connection, items: Sequence[tuple[str, str]]) -> None:
    if items:
        await conn.executemany(
            "INSERT INTO audit_room_version (room_id, room_version) VALUES ($1, $2)"
            " ON CONFLICT (room_id) DO NOTHING",
            list(items),
        )


async def room_versions(conn: Connection, room_ids: Iterable[str]) -> dict[str, str]:
    rooms = sorted(set(room_ids))
    found: dict[str, str] = {}
    for part in _chunks(rooms):
        sql = f"SELECT room_id, room_version FROM audit_room_version WHERE room_id IN ({marks(len(part))})"
        for r in await conn.fetch(sql, *part):
            found[r[0]] = r[1]
    return found


async def add_room_matters(conn: Connection, items: Sequence[tuple[str, int]]) -> None:
    if items:
        await conn.executemany(
            "INSERT INTO audit_room_matter (room_id, matter_id) VALUES ($1, $2)"
            " ON CONFLICT (room_id) DO NOTHING",
            list(items),
        )


async def matters_of_rooms(conn: Connection, room_ids: Iterable[str]) -> dict[str, int]:
    """The matter of each room: as saved with the matter, else as the bridge's create event
    named it (a room whose creation is sealed before the reconciler saved it)."""
    rooms = sorted({r for r in room_ids if r})
    result: dict[str, int] = {}
    for sql in (
        "SELECT room_id, wp_id FROM matter WHERE room_id IN ({})",
        "SELECT room_id, matter_id FROM audit_room_matter WHERE room_id IN ({})",
    ):
        rest = [r for r in rooms if r not in result]
        for part in _chunks(rest):
            for r in await conn.fetch(sql.format(marks(len(part))), *part):
                result[r[0]] = r[1]
    return result


async def append(
    conn: Connection,
    rows: Sequence[dict],
    addresses: dict[int, tuple[str | None, str | None]],
) -> list[dict]:
    """Chain pending rows (in the order given) and drop them from the queue; in a transaction.

    Rows another writer sealed meanwhile are skipped; an event already in the chain (delivered
    twice: a replayed transaction, a gap fill racing a late transaction) is dropped, not chained
    again. Returns the records appended.
    """
    if conn.scheme == Scheme.POSTGRES:
        # Sealing moves rows from the queue to the chain in one transaction, so if a crash lost
        # this commit the rows would still be queued and be sealed again: it need not wait for
        # the disk. (The next synchronous commit, such as the next appservice transaction's or
        # the note an exported head writes, flushes it anyway.)
        await conn.execute("SET LOCAL synchronous_commit = off")
    await conn.execute("UPDATE audit_head SET seq = seq WHERE id = 1")  # the writer lock
    seq, prev = await head(conn)
    present = await _existing(
        conn, "SELECT id FROM audit_pending WHERE id IN ({})", [r["id"] for r in rows], "bigint"
    )
    live = [r for r in rows if r["id"] in present]
    chained = await _existing(
        conn,
        "SELECT event_id FROM audit_record WHERE event_id IN ({})",
        [r["event_id"] for r in live if r["event_id"]],
        "text",
    )
    matters = await matters_of_rooms(conn, (r["room_id"] for r in live))
    records = []
    for r in live:
        if r["event_id"] and r["event_id"] in chained:
            continue
        chained.add(r["event_id"])
        record = sealed_record(r, matters.get(r["room_id"]), addresses.get(r["id"], (None, None)))
        record["seq"] = seq = seq + 1
        record["prev_hash"] = prev
        record["hash"] = prev = chain.link(prev, record)
        records.append(record)
    if records:
        values = [tuple(rec[c] for c in RECORD_COLS) for rec in records]
        if conn.scheme == Scheme.POSTGRES:
            await conn.copy_records_to_table("audit_record", records=values, columns=RECORD_COLS)
        else:
            await conn.executemany(
                f"INSERT INTO audit_record ({', '.join(RECORD_COLS)})"
                f" VALUES ({marks(len(RECORD_COLS))})",
                values,
            )
        await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, prev)
    ids = [r["id"] for r in live]
    if conn.scheme == Scheme.POSTGRES:
        await conn.execute("DELETE FROM audit_pending WHERE id = ANY($1::bigint[])", ids)
    else:
        for part in _chunks(ids):
            await conn.execute(f"DELETE FROM audit_pending WHERE id IN ({marks(len(part))})", *part)
    return records


async def records_after(conn: Connection, after_seq: int, limit: int) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {', '.join(RECORD_COLS)} FROM audit_record WHERE seq > $1 ORDER BY seq LIMIT $2",
        after_seq,
        limit,
    )
    return [dict(r) for r in rows]


async def known_events(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these events the audit holds (chained or queued)."""
    found = await _existing(
        conn, "SELECT event_id FROM audit_record WHERE event_id IN ({})", event_ids, "text"
    )
    rest = [e for e in event_ids if e not in found]
    found |= await _existing(
        conn, "SELECT event_id FROM audit_pending WHERE event_id IN ({})", rest, "text"
    )
    return found


async def last_event_ts(conn: Connection, room_id: str) -> int | None:
    value = await conn.fetchval(
        "SELECT MAX(ts) FROM audit_record WHERE room_id = $1 AND kind = 'event'", room_id
    )
    return None if value is None else int(value)


async def legal_hold(conn: Connection, wp_id: int) -> bool:
    """Whether the matter is under a legal hold (False for one not known yet)."""
    return bool(
        await conn.fetchval("SELECT legal_hold FROM matter_retention WHERE matter_id = $1", wp_id)
    )


async def save_matter_retention(conn: Connection, wp_id: int, data: Any, now: float) -> None:
    """Keep a matter's retention values and legal hold as WordPress sent them (a matter upsert
    replaces them: a value left out falls back to the default), and when it was closed."""
    closed = str(data.status) == "closed"
    closed_at = None
    if closed:
        closed_at = await conn.fetchval(
            "SELECT closed_at FROM matter_retention WHERE matter_id = $1", wp_id
        )
        closed_at = now if closed_at is None else closed_at
    await conn.execute(
        "INSERT INTO matter_retention (matter_id, open_days, closed_days, media_days, legal_hold,"
        " closed_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (matter_id) DO UPDATE SET"
        " open_days = excluded.open_days, closed_days = excluded.closed_days,"
        " media_days = excluded.media_days, legal_hold = excluded.legal_hold,"
        " closed_at = excluded.closed_at",
        wp_id,
        data.retention_open_days,
        data.retention_closed_days,
        data.retention_media_days,
        data.legal_hold,
        closed_at,
    )
