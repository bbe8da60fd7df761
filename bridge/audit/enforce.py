"""Retention enforcement: the dry-run report, and the purge that carries it out.

The report is built from the audit trail (which events exist, when, in which matter room) and,
for attachments, from the homeserver's list of each person's uploads. Enforcement applies the
report it was given, so what is deleted is what the report listed, and records in the chain what
the homeserver then no longer holds.

Messages: purged with Synapse's purge_history up to the earliest event the schedule keeps (or a
marker state event the bridge sends when it keeps none), so the homeserver deletes exactly the
older non-state events. State events (membership, names, power levels) are never deleted by the
homeserver; they are not listed.

Attachments: in end-to-end-encrypted rooms their addresses travel inside the ciphertext, hidden
from the homeserver and the bridge, so an upload is linked to the matter rooms in which its
uploader sent a message within `retention.media_window` seconds after uploading it (clients send
the message right after the upload). It is deleted only if it would be under every room it may
belong to; an upload linked to none is kept. Media in unencrypted events is linked exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mautrix.util.async_db import Database

from ..db import transaction
from ..homeserver import AppService, HomeserverAdmin, HomeserverError
from . import retention, store
from .ingest import Sealer
from .records import note_row

log = logging.getLogger("bridge.audit.retention")
MARKER_TYPE = "org.firm.retention"
IDS_PER_RECORD = 200
MESSAGE_TYPES = ("m.room.encrypted", "m.room.message", "m.sticker")


async def _schedules(
    conn: Any, defaults: Mapping[str, float | None], only: int | None = None
) -> list[tuple[int, str | None, str, retention.Schedule]]:
    rows = await conn.fetch(
        "SELECT m.wp_id, m.room_id, m.status, r.open_days, r.closed_days, r.media_days,"
        " r.legal_hold, r.closed_at FROM matter m"
        " LEFT JOIN matter_retention r ON r.matter_id = m.wp_id"
        + ("" if only is None else " WHERE m.wp_id = $1")
        + " ORDER BY m.wp_id",
        *(() if only is None else (only,)),
    )
    result = []
    for r in rows:
        closed = r["status"] == "closed"
        closed_at = int(r["closed_at"] * 1000) if closed and r["closed_at"] is not None else None
        schedule = retention.resolve(dict(r), defaults, closed, closed_at)
        result.append((r["wp_id"], r["room_id"], r["status"], schedule))
    return result


async def _expired_messages(conn: Any, room_id: str, cutoff: int) -> list[dict]:
    rows = await conn.fetch(
        "SELECT event_id, ts, sender, event_type FROM audit_record"
        " WHERE room_id = $1 AND kind = 'event' AND state_key IS NULL AND ts < $2"
        " AND NOT EXISTS (SELECT 1 FROM retention_purged_event p WHERE p.event_id = audit_record.event_id)"
        " ORDER BY ts, seq",
        room_id,
        cutoff,
    )
    return [dict(r) for r in rows]


async def build_report(
    db: Database,
    admin: HomeserverAdmin | None,
    defaults: Mapping[str, float | None],
    media_window: float,
    domain: str,
    now: int,
) -> dict[str, Any]:
    """What retention would delete as of `now` (ms), and why. Changes nothing."""
    matters: list[dict[str, Any]] = []
    by_room: dict[str, tuple[int, retention.Schedule]] = {}
    async with store.acquire(db) as conn:
        for wp_id, room_id, status, schedule in await _schedules(conn, defaults):
            if room_id:
                by_room[room_id] = (wp_id, schedule)
            decision = retention.message_cutoff(schedule, now)
            entry: dict[str, Any] = {
                "matter": wp_id,
                "room_id": room_id,
                "status": status,
                "schedule": schedule.to_dict(),
                "cutoff": decision.cutoff,
                "reason": decision.reason,
                "messages": [],
                "held_messages": 0,
            }
            if room_id and decision.cutoff is not None:
                entry["messages"] = [
                    {**m, "reason": decision.reason}
                    for m in await _expired_messages(conn, room_id, decision.cutoff)
                ]
            held = retention.held_cutoff(schedule, now)
            if room_id and held is not None:
                entry["held_messages"] = len(await _expired_messages(conn, room_id, held))
            matters.append(entry)
        people = [
            f"@{r['localpart']}:{domain}"
            for r in await conn.fetch("SELECT localpart FROM person ORDER BY wp_id")
        ]
    report: dict[str, Any] = {"as_of": now, "as_of_iso": retention.iso(now), "matters": matters}
    if admin is None:
        report["media"] = None
        report["media_note"] = "no homeserver.admin_token: attachments are not examined"
        return report
    media, kept = await _media_plan(db, admin, people, by_room, media_window, domain, now)
    report["media"] = media
    report["kept_media"] = kept
    return report


async def _media_plan(
    db: Database,
    admin: HomeserverAdmin,
    people: list[str],
    by_room: dict[str, tuple[int, retention.Schedule]],
    media_window: float,
    server: str,
    now: int,
) -> tuple[list[dict], list[dict]]:
    uploads = []
    for user_id in people:
        start = 0
        while True:
            try:
                page = await admin.user_media(user_id, start)
            except HomeserverError as e:
                if e.status == 404:  # not registered on the homeserver yet
                    break
                raise
            for m in page.get("media", []):
                uploads.append((user_id, m))
            if page.get("next_token") is None:
                break
            start = int(page["next_token"])
    media: list[dict] = []
    kept: list[dict] = []
    async with store.acquire(db) as conn:
        held = await _held_assignments(conn)
        matter_people: dict[int, set[int]] = {}
        for user_id, m in uploads:
            media_id = f"{server}/{m['media_id']}"
            created = int(m.get("created_ts") or 0)
            if await conn.fetchval(
                "SELECT 1 FROM retention_deleted_media WHERE media_id = $1", media_id
            ):
                continue
            rooms = [
                r["room_id"]
                for r in await conn.fetch(
                    "SELECT room_id FROM audit_media WHERE media_id = $1", media_id
                )
            ]
            link = "event"
            if not rooms:
                link = "uploader"
                rooms = [
                    r["room_id"]
                    for r in await conn.fetch(
                        "SELECT DISTINCT room_id FROM audit_record WHERE sender = $1"
                        " AND kind = 'event' AND event_type IN ($2, $3, $4)"
                        " AND ts >= $5 AND ts <= $6",
                        user_id,
                        *MESSAGE_TYPES,
                        created,
                        created + int(media_window * 1000),
                    )
                ]
            candidates = [by_room[r] if r in by_room else (0, None) for r in sorted(rooms)]
            decision = retention.media_decision(candidates, created, now)
            linked_matters = [c[0] for c in candidates if c[1] is not None]
            if decision.cutoff is not None:
                forwarded = await _held_forward(conn, linked_matters, held, matter_people)
                if forwarded:
                    decision = retention.Decision(None, forwarded)
            item = {
                "media_id": media_id,
                "uploader": user_id,
                "created_ts": created,
                "size": m.get("media_length"),
                "matters": linked_matters,
                "linked_by": link if rooms else None,
                "reason": decision.reason,
            }
            (media if decision.cutoff is not None else kept).append(item)
    return media, kept


async def _schedule_now(
    db: Database, defaults: Mapping[str, float | None], wp_id: int
) -> retention.Schedule | None:
    async with store.acquire(db) as conn:
        found = await _schedules(conn, defaults, only=wp_id)
    return found[0][3] if found else None


async def _still_due(
    db: Database, defaults: Mapping[str, float | None], entry: Mapping[str, Any], now: int
) -> tuple[Mapping[str, Any] | None, str]:
    """The report's entry as it may still be carried out, read again just before: a legal hold
    set, a matter reopened or a schedule lengthened since the report keeps what it now keeps."""
    schedule = await _schedule_now(db, defaults, entry["matter"])
    if schedule is None:
        return None, "the matter is gone"
    decision = retention.message_cutoff(schedule, now)
    if decision.cutoff is None:
        return None, decision.reason
    if decision.cutoff >= entry["cutoff"]:
        return entry, ""
    kept = [m for m in entry["messages"] if m["ts"] < decision.cutoff]
    return {**entry, "cutoff": decision.cutoff, "messages": kept}, ""


async def apply_report(
    db: Database,
    admin: HomeserverAdmin,
    bot: AppService,
    sealer: Sealer,
    report: Mapping[str, Any],
    actor: str,
    defaults: Mapping[str, float | None],
) -> dict[str, Any]:
    """Delete what the report lists, no more, and nothing a schedule read again just before
    keeps; record in the chain what the homeserver no longer holds."""
    result: dict[str, Any] = {
        "as_of": report["as_of"],
        "purged": {},
        "not_purged": {},
        "skipped": {},
        "errors": [],
    }
    now = report["as_of"]
    for listed in report["matters"]:
        if not listed["messages"]:
            continue
        entry, why = await _still_due(db, defaults, listed, now)
        if entry is None or not entry["messages"]:
            result["skipped"][listed["matter"]] = why or "nothing is due any more"
            log.info("Retention: matter %s skipped (%s)", listed["matter"], why or "nothing due")
            continue
        await _record(
            db,
            actor,
            "retention_purge_issued",
            entry["room_id"],
            [],
            {
                "matter": entry["matter"],
                "cutoff": entry["cutoff"],
                "listed": len(entry["messages"]),
            },
        )
        try:
            gone, left = await _purge_matter(db, admin, bot, entry)
        except HomeserverError as e:
            log.warning("Retention purge of matter %s failed: %s", entry["matter"], e)
            result["errors"].append({"matter": entry["matter"], "error": str(e)})
            continue
        result["purged"][entry["matter"]] = gone
        if left:
            result["not_purged"][entry["matter"]] = left
        await _record(
            db,
            actor,
            "retention_purge",
            entry["room_id"],
            gone,
            {
                "matter": entry["matter"],
                "cutoff": entry["cutoff"],
                "reason": entry["reason"],
                "schedule": entry["schedule"],
            },
        )
        log.info(
            "Retention: purged %d event(s) of matter %s (%s)",
            len(gone),
            entry["matter"],
            entry["reason"],
        )
    deleted = []
    for item in report.get("media") or []:
        why = await _media_still_due(db, defaults, item, now)
        if why:
            result["skipped"][item["media_id"]] = why
            continue
        try:
            await admin.delete_media(item["media_id"])
            still = await admin.media_info(item["media_id"])
        except HomeserverError as e:
            result["errors"].append({"media_id": item["media_id"], "error": str(e)})
            continue
        if still is not None:
            result["errors"].append({"media_id": item["media_id"], "error": "still present"})
            continue
        deleted.append(item["media_id"])
        async with transaction(db) as conn:
            await conn.execute(
                "INSERT INTO retention_deleted_media (media_id, deleted_at) VALUES ($1, $2)"
                " ON CONFLICT (media_id) DO NOTHING",
                item["media_id"],
                report["as_of"],
            )
            await store.add_pending(conn, [note_row("retention_media", actor, item)])
    if deleted:
        log.info("Retention: deleted %d attachment(s)", len(deleted))
    result["deleted_media"] = deleted
    await sealer.flush()
    return result


async def _purge_matter(
    db: Database, admin: HomeserverAdmin, bot: AppService, entry: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    room_id, cutoff = entry["room_id"], entry["cutoff"]
    wanted = [m["event_id"] for m in entry["messages"]]
    async with store.acquire(db) as conn:
        boundary = await conn.fetchval(
            "SELECT event_id FROM audit_record WHERE room_id = $1 AND kind = 'event'"
            " AND ts >= $2 AND NOT EXISTS (SELECT 1 FROM retention_purged_event p"
            " WHERE p.event_id = audit_record.event_id) ORDER BY ts, seq LIMIT 1",
            room_id,
            cutoff,
        )
    if boundary is None:
        # Everything before the marker goes. Only if the room's newest messages are all ones
        # the report listed: a message the audit has not sealed yet must not go unlisted.
        newest = await admin.room_messages(room_id, "b", None, limit=100)
        listed = set(wanted)
        unlisted = [
            e.get("event_id")
            for e in newest.get("chunk", [])
            if "state_key" not in e and e.get("event_id") not in listed
        ]
        if unlisted:
            raise HomeserverError(
                0,
                "AUDIT_BEHIND",
                f"{len(unlisted)} newest message(s) of the room are not in the report yet;"
                " not purged this time",
            )
        # Nothing is kept: the homeserver never deletes a room's latest event, so the bridge
        # sends one that says what was purged, and purges up to it.
        boundary = await bot.put_state(
            room_id, MARKER_TYPE, {"purged_before": cutoff, "reason": entry["reason"]}
        )
    purge_id = await admin.purge_history(room_id, boundary)
    status = await admin.wait_purge(purge_id)
    if status != "complete":
        raise HomeserverError(0, "PURGE_" + status.upper(), f"purge {purge_id} ended {status}")
    remaining = await _remaining_before(admin, room_id, cutoff)
    gone = [e for e in wanted if e not in remaining]
    left = [e for e in wanted if e in remaining]
    async with transaction(db) as conn:
        await conn.executemany(
            "INSERT INTO retention_purged_event (event_id, purged_at) VALUES ($1, $2)"
            " ON CONFLICT (event_id) DO NOTHING",
            [(e, cutoff) for e in gone],
        )
    return gone, left


async def _remaining_before(admin: HomeserverAdmin, room_id: str, cutoff: int) -> set[str]:
    """Event ids the homeserver still holds in the room from before `cutoff`.

    After a purge the room starts with what was kept, so reading forward from its start until
    well past the cutoff finds every survivor without reading the whole room.
    """
    found: set[str] = set()
    token = None
    past = 0
    while True:
        page = await admin.room_messages(room_id, "f", token)
        chunk = page.get("chunk", [])
        for e in chunk:
            if e.get("origin_server_ts", 0) < cutoff:
                found.add(e.get("event_id"))
            else:
                past += 1
        token = page.get("end")
        if not chunk or not token or past >= 500:
            return found


async def _record(
    db: Database, actor: str, kind: str, room_id: str, ids: list[str], detail: dict
) -> None:
    """Deletion records: the event ids, IDS_PER_RECORD to a record."""
    parts = [ids[i : i + IDS_PER_RECORD] for i in range(0, len(ids), IDS_PER_RECORD)] or [[]]
    async with transaction(db) as conn:
        await store.add_pending(
            conn,
            [
                note_row(
                    kind,
                    actor,
                    {**detail, "events": part, "part": i + 1, "parts": len(parts)},
                    room_id=room_id,
                )
                for i, part in enumerate(parts)
            ],
        )


async def _media_still_due(
    db: Database, defaults: Mapping[str, float | None], item: Mapping[str, Any], now: int
) -> str:
    """Why an attachment the report listed must be kept after all ("" when it may go): a
    schedule read again just before, or a held matter it may have been forwarded into (an
    encrypted file keeps its address when forwarded, unseen by the bridge, by anyone who was
    in a room it was linked to)."""
    candidates = []
    for wp_id in item["matters"]:
        schedule = await _schedule_now(db, defaults, wp_id)
        if schedule is None:
            return f"matter {wp_id} is gone"
        candidates.append((wp_id, schedule))
    decision = retention.media_decision(candidates, item["created_ts"], now)
    if decision.cutoff is None:
        return decision.reason
    async with store.acquire(db) as conn:
        return await _held_forward(conn, item["matters"])


async def _held_assignments(conn: Any) -> list[tuple[int, int]]:
    """(matter, person) for every person on a matter under legal hold."""
    rows = await conn.fetch(
        "SELECT a.matter_id, a.person_id FROM matter_retention r"
        " JOIN matter_assignment a ON a.matter_id = r.matter_id WHERE r.legal_hold"
        " ORDER BY a.matter_id"
    )
    return [(r["matter_id"], r["person_id"]) for r in rows]


async def _held_forward(
    conn: Any,
    matters: Any,
    held: list[tuple[int, int]] | None = None,
    people: dict[int, set[int]] | None = None,
) -> str:
    """An encrypted file keeps its address when forwarded, unseen by the bridge: one linked to
    these matters may sit in any held matter that shares a person with them. `held` and
    `people` (matter -> its people) may be read once for many uploads; else they are read now."""
    if held is None:
        held = await _held_assignments(conn)
    people = {} if people is None else people
    linked: set[int] = set()
    for wp_id in matters:
        if wp_id not in people:
            people[wp_id] = {
                r["person_id"]
                for r in await conn.fetch(
                    "SELECT person_id FROM matter_assignment WHERE matter_id = $1", wp_id
                )
            }
        linked |= people[wp_id]
    for matter_id, person_id in held:
        if person_id in linked and matter_id not in matters:
            return f"may have been forwarded into matter {matter_id}, which is on legal hold"
    return ""
