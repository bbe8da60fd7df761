"""Ingestion: the appservice event sink, and the sealer that chains what it queued.

The sink runs inside the appservice transaction's DB transaction, so what it queues commits with
the transaction id: once, or not at all (the homeserver retries). It does no network I/O. The
sealer then attaches client addresses (whois, cached, fetched outside any DB transaction) and
appends the queued rows to the chain in one writer order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from mautrix.util.async_db import Database

from ..db import transaction
from . import store
from .calls import call_records
from .records import (
    client_address,
    created_for_matter,
    event_row,
    media_ids,
    now_ms,
    room_version_created,
)
from .redaction import version_independent
from .whois import WhoisCache

# Seconds between a transaction and the sealer's look at it (gathers a stream into batches).
WAKE_DELAY = 0.25
log = logging.getLogger("bridge.audit.ingest")


async def queue_events(
    conn: Any, events: Sequence[Any], source: str, bridge_user: str | None = None
) -> int:
    """Queue the room events among `events` for the chain (and index media they point at, and
    the matter of each room the bridge `bridge_user` created)."""
    received = now_ms()
    rows = []
    media = []
    created = []
    events = [e for e in events if isinstance(e, dict)]
    # The redacted form of state events and redactions depends on the room version.
    new_versions = [v for v in map(room_version_created, events) if v is not None]
    versions = dict(new_versions)
    wanted = {
        e.get("room_id")
        for e in events
        if not version_independent(e) and isinstance(e.get("room_id"), str)
    }
    versions.update(await store.room_versions(conn, [r for r in wanted if r not in versions]))
    for event in events:
        room_id = event.get("room_id")
        row = event_row(
            event, source, received, versions.get(room_id) if isinstance(room_id, str) else None
        )
        if row is None:
            continue
        rows.append(row)
        for mid in media_ids(event):
            media.append((mid, row["room_id"], row["event_id"], row["ts"]))
        room_matter = created_for_matter(event, bridge_user)
        if room_matter is not None:
            created.append(room_matter)
    await store.add_pending(conn, rows)
    await store.add_pending(conn, await call_records(conn, rows))
    await store.add_media(conn, media)
    await store.add_room_matters(conn, created)
    await store.add_room_versions(conn, new_versions)
    return len(rows)


class Sealer:
    """Moves queued rows into the chain, in batches, one writer at a time."""

    def __init__(
        self,
        db: Database,
        whois: WhoisCache | None,
        *,
        batch: int = 2000,
        poll_interval: float = 1.0,
        whois_wait: float = 15.0,
    ) -> None:
        self.db = db
        self.whois = whois
        self.batch = batch
        self.poll_interval = poll_interval
        self.whois_wait = whois_wait
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._lock = asyncio.Lock()
        self.sealed = 0

    def wake(self) -> None:
        # Called from inside a DB transaction that has not committed yet; a short delay lets it
        # commit before the sealer looks (the poll interval catches anything later), and one
        # pending wake-up at a time gathers a busy stream into larger batches.
        if self._wake_pending:
            return
        self._wake_pending = True
        asyncio.get_running_loop().call_later(WAKE_DELAY, self._fire)

    def _fire(self) -> None:
        self._wake_pending = False
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                # Seal until a batch comes back short; the rest of a steady stream waits for
                # the next wake-up and goes in as one larger batch.
                while await self.seal_once() >= self.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Sealing audit records failed; retrying")
                await asyncio.sleep(self.poll_interval)
            try:
                # Not wait_for: on Python 3.11 it swallows a cancellation that arrives with the
                # wake-up, and this loop then outlives the bridge's stop (bridge/tasks.py).
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def flush(self, timeout: float = 60) -> None:
        """Seal everything queued so far (before a read or a verify reports on the chain)."""
        deadline = time.monotonic() + timeout
        while await self.seal_once() or await self._pending():
            if time.monotonic() > deadline:
                raise TimeoutError("audit records are still waiting to be sealed")
            await asyncio.sleep(0.05)

    async def _pending(self) -> int:
        async with store.acquire(self.db) as conn:
            return await store.pending_count(conn)

    async def seal_once(self) -> int:
        """Seal one batch; returns how many queued rows it handled."""
        async with self._lock:
            async with store.acquire(self.db) as conn:
                rows = await store.pending_batch(conn, self.batch)
            if not rows:
                return 0
            rows, addresses = await self._addresses(rows)
            if not rows:
                return 0
            async with transaction(self.db) as conn:
                records = await store.append(conn, rows, addresses)
            self.sealed += len(records)
            return len(rows)

    async def _addresses(
        self, rows: list[dict]
    ) -> tuple[list[dict], dict[int, tuple[str | None, str | None]]]:
        if self.whois is None:
            return rows, {}
        wanted = {(r["sender"], r["device_id"]) for r in rows if r["kind"] == "event"}
        await self.whois.refresh(wanted)
        addresses: dict[int, tuple[str | None, str | None]] = {}
        now = now_ms()
        for i, r in enumerate(rows):
            if r["kind"] != "event":
                continue
            info = self.whois.cached(r["sender"])
            if (
                r["device_id"] is not None
                and (info is None or not info.knows_address_of(r["device_id"]))
                and now - r["recorded_at"] < self.whois_wait * 1000
            ):
                # A device whose address the homeserver has not reported yet (a login a moment
                # ago; Synapse writes client addresses in batches): hold the chain here briefly
                # rather than seal the record without its address.
                return rows[:i], addresses
            addresses[r["id"]] = client_address(info, r["device_id"])
        return rows, addresses


class AuditSink:
    """The EventSink registered with the appservice handler."""

    def __init__(self, sealer: Sealer, bridge_user: str) -> None:
        self.sealer = sealer
        self.bridge_user = bridge_user

    async def on_events(self, conn: Any, events: list[dict]) -> None:
        if await queue_events(conn, events, "txn", self.bridge_user):
            self.sealer.wake()
