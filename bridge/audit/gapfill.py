"""After downtime: read each managed room's recent timeline and audit what the audit missed.

The homeserver retries transactions the bridge did not acknowledge, so normally nothing is
missing; this covers what a retry cannot (transactions the homeserver gave up on, a database
restored from an older backup). Each room is read backwards from its newest event down to a
little before the newest event the audit holds for it: matter rooms as the bridge's own user
(a member), other rooms the audit has seen (direct and group conversations, where the bridge is
not a member) through the homeserver's admin API when the bridge has an admin token. Anything
already audited is skipped by event id, so running it while transactions arrive adds nothing
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from mautrix.util.async_db import Database

from ..db import transaction
from ..homeserver import AppService, HomeserverAdmin, HomeserverError
from . import store
from .ingest import Sealer, queue_events

log = logging.getLogger("bridge.audit.gapfill")
SLACK_MS = 5 * 60 * 1000  # events can arrive out of timestamp order; look this much further back
# One page of a room's timeline, newest first: (room id, pagination token) -> /messages answer.
PageReader = Callable[[str, str | None], Awaitable[dict]]


async def fill_room(
    db: Database, read_page: PageReader, room_id: str, max_events: int, bridge_user: str
) -> int:
    async with store.acquire(db) as conn:
        last = await store.last_event_ts(conn, room_id)
    stop_before = None if last is None else last - SLACK_MS
    token: str | None = None
    seen = added = 0
    while seen < max_events:
        page = await read_page(room_id, token)
        events = [e for e in page.get("chunk", []) if isinstance(e, dict)]
        if not events:
            break
        seen += len(events)
        ids = [e["event_id"] for e in events if isinstance(e.get("event_id"), str)]
        async with transaction(db) as conn:
            known = await store.known_events(conn, ids)
            missing = [e for e in events if e.get("event_id") not in known]
            for e in missing:
                e.setdefault("room_id", room_id)
            added += await queue_events(conn, missing, "gapfill", bridge_user)
        oldest = min(
            (e["origin_server_ts"] for e in events if isinstance(e.get("origin_server_ts"), int)),
            default=None,
        )
        token = page.get("end")
        if not token or (stop_before is not None and oldest is not None and oldest < stop_before):
            break
    return added


async def fill_gaps(
    db: Database,
    bot: AppService,
    admin: HomeserverAdmin | None,
    sealer: Sealer,
    max_events: int = 10000,
) -> int:
    """Check every matter room, and with an admin token every other room the audit has seen;
    returns how many events were missing and are now audited."""

    async def as_bot(room_id: str, token: str | None) -> dict:
        return await bot.messages(room_id, token, limit=100)

    async def as_admin(room_id: str, token: str | None) -> dict:
        assert admin is not None
        return await admin.room_messages(room_id, "b", token, limit=100)

    async with store.acquire(db) as conn:
        matter_rooms = [
            r["room_id"]
            for r in await conn.fetch("SELECT room_id FROM matter WHERE room_id IS NOT NULL")
        ]
        others = []
        if admin is not None:
            others = [
                r["room_id"]
                for r in await conn.fetch(
                    "SELECT DISTINCT room_id FROM audit_record WHERE kind = 'event' AND room_id"
                    " NOT IN (SELECT room_id FROM matter WHERE room_id IS NOT NULL)"
                )
            ]
    total = 0
    rooms: list[tuple[str, PageReader]] = [(r, as_bot) for r in matter_rooms]
    rooms += [(r, as_admin) for r in others]
    for room_id, read_page in rooms:
        try:
            added = await fill_room(db, read_page, room_id, max_events, bot.bot_mxid)
        except HomeserverError as e:
            log.warning("Gap fill of %s failed: %s", room_id, e)
            continue
        if added:
            log.info("Gap fill: %d event(s) in %s were missing from the audit", added, room_id)
            sealer.wake()
        total += added
    log.info(
        "Gap fill checked %d matter room(s) and %d other room(s); %d event(s) added",
        len(matter_rooms),
        len(others),
        total,
    )
    return total
