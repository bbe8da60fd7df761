"""The notice worker: activity to windows, windows to decisions, decisions to WordPress.

Three steps, each reading its work from the DB and leaving it there until done, so a bridge
killed at any point picks up where it was (a decided notice is sent again under the same id;
WordPress sends it once):

1. activity → windows: for each room where messages came, the members they may be waiting for
   (joined, the firm's people, not the sender) get a window, due `delay` after the first message.
2. windows → decisions: when a window is due, the person's notifications (the homeserver's) say
   whether something has waited unread the whole delay (`decide.decide`).
3. decisions → WordPress: the signed call, retried with backoff until WordPress answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from typing import Any

from mautrix.util.async_db import Database

from ..db import transaction
from ..homeserver import AppService, HomeserverError, describe
from ..registration import people_regex
from ..settings import NotifySettings, WordPressSettings
from . import decide
from .homeserver import NoticeHomeserver
from .sink import ActivitySink
from .wordpress import NoticeSender

log = logging.getLogger("bridge.notify")
BATCH = 100
MEMBER_CACHE = 20_000


class NoticeService:
    def __init__(
        self,
        db: Database,
        hs: NoticeHomeserver,
        sender: NoticeSender | None,
        *,
        bot_mxid: str,
        domain: str,
        delay: float,
        poll_interval: float,
        backoff_max: float,
    ) -> None:
        self.db = db
        self.hs = hs
        self.sender = sender
        self.bot_mxid = bot_mxid
        self.domain = domain
        self.delay = delay
        self.poll_interval = poll_interval
        self.backoff_max = backoff_max
        self._people = re.compile(people_regex(domain))
        # Joined members per room: a cache (the homeserver is the truth), dropped for a room
        # whenever one of its membership events passes through the bridge.
        self._members: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._member_gen: dict[str, int] = {}
        self._wake = asyncio.Event()
        self.sink = ActivitySink(bot_mxid, self._membership_changed)
        self.sink.wake = self._wake.set
        self._task: asyncio.Task | None = None

    @property
    def emails(self) -> bool:
        """Whether e-mail notices are on (WordPress's notice route is configured)."""
        return self.sender is not None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.emails:
            self._task = asyncio.create_task(self._run(), name="notify-worker")
            return
        # Off: nothing is tracked (the sink is not fed), and what was waiting from a time they
        # were on is forgotten, so turning them on later sends no notice about old messages.
        async with transaction(self.db) as conn:
            await conn.execute("DELETE FROM notify_activity")
            await conn.execute(
                "UPDATE notify_person SET due_at = NULL, notice_id = NULL, notice_body = NULL,"
                " send_at = NULL, check_attempts = 0, send_attempts = 0, last_error = NULL"
                " WHERE due_at IS NOT NULL OR notice_id IS NOT NULL"
            )

    @property
    def tasks(self) -> list[asyncio.Task]:
        return [self._task] if self._task is not None else []

    async def close(self) -> None:
        if self.sender is not None:
            await self.sender.close()

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.step()
            except Exception:
                log.exception("Notice worker step failed")
                busy = False
            if not busy:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def step(self) -> bool:
        """One pass of the three steps; True if there may be more to do at once."""
        expanded = await self.expand()
        checked = await self.check_due()
        sent = await self.send_due()
        return BATCH in (expanded, checked, sent)

    # --- 1. activity → windows -------------------------------------------------------------

    def _membership_changed(self, room_id: str) -> None:
        self._members.pop(room_id, None)
        self._member_gen[room_id] = self._member_gen.get(room_id, 0) + 1
        if len(self._member_gen) > MEMBER_CACHE:
            self._member_gen.clear()

    def _is_person(self, mxid: str) -> bool:
        return mxid != self.bot_mxid and bool(self._people.match(mxid))

    async def members(self, room_id: str, sender: str) -> frozenset[str] | None:
        """Joined members (None: the homeserver will not say, to the sender or the bridge)."""
        cached = self._members.get(room_id)
        if cached is not None:
            self._members.move_to_end(room_id)
            return cached
        gen = self._member_gen.get(room_id, 0)
        askers = [sender] if self._is_person(sender) else []
        askers.append(self.bot_mxid)
        for asker in askers:
            try:
                joined = frozenset(await self.hs.joined_members(room_id, asker))
            except HomeserverError as e:
                if e.status not in (403, 404):
                    raise
                continue  # the homeserver will not say to this one
            if self._member_gen.get(room_id, 0) == gen:
                self._members[room_id] = joined
                if len(self._members) > MEMBER_CACHE:
                    self._members.popitem(last=False)
            return joined
        return None

    async def expand(self) -> int:
        rows = await self.db.fetch(
            "SELECT room_id, sender, first_ts, hits FROM notify_activity"
            " ORDER BY first_ts LIMIT $1",
            BATCH,
        )
        for row in rows:
            room_id, sender = row["room_id"], row["sender"]
            try:
                members = await self.members(room_id, sender)
            except HomeserverError as e:
                log.warning(
                    "Notices: cannot read the members of %s (%s); later", room_id, describe(e)
                )
                return 0
            waiting = sorted(m for m in members or () if m != sender and self._is_person(m))
            async with transaction(self.db) as conn:
                opened = await self._open_windows(conn, waiting, row["first_ts"])
                await conn.execute(
                    "DELETE FROM notify_activity WHERE room_id = $1 AND sender = $2 AND hits = $3",
                    room_id,
                    sender,
                    row["hits"],
                )
            if members is None:
                log.warning("Notices: nobody may read the members of %s; skipped", room_id)
            elif opened:
                log.debug("Notices: %d window(s) for a message in %s", opened, room_id)
        return len(rows)

    async def _open_windows(self, conn: Any, mxids: list[str], first_ts: int) -> int:
        if not mxids:
            return 0
        localparts = [m[1:].split(":", 1)[0] for m in mxids]
        marks = ", ".join(f"${i + 1}" for i in range(len(localparts)))
        people = await conn.fetch(
            "SELECT p.wp_id, n.email, n.delay_seconds FROM person p"
            f" LEFT JOIN notify_pref n ON n.wp_id = p.wp_id WHERE p.localpart IN ({marks})"
            " AND p.active = true",
            *localparts,
        )
        opened = 0
        for p in people:
            if p["email"] is not None and not p["email"]:
                continue  # they asked for no e-mail
            delay = self.delay if p["delay_seconds"] is None else p["delay_seconds"]
            await conn.execute(
                "INSERT INTO notify_person (wp_id, due_at, touched) VALUES ($1, $2, 1)"
                " ON CONFLICT (wp_id) DO UPDATE SET touched = notify_person.touched + 1,"
                " due_at = COALESCE(notify_person.due_at, excluded.due_at)",
                p["wp_id"],
                first_ts / 1000 + delay,
            )
            opened += 1
        return opened

    # --- 2. windows → decisions ------------------------------------------------------------

    async def check_due(self) -> int:
        now = time.time()
        rows = await self.db.fetch(
            "SELECT w.wp_id, w.touched, w.covered_until, w.check_attempts, p.localpart,"
            " p.active, n.email, n.delay_seconds FROM notify_person w"
            " JOIN person p ON p.wp_id = w.wp_id LEFT JOIN notify_pref n ON n.wp_id = w.wp_id"
            " WHERE w.due_at <= $1 AND w.notice_id IS NULL ORDER BY w.due_at LIMIT $2",
            now,
            BATCH,
        )
        for row in rows:
            await self._check(row)
        return len(rows)

    async def _check(self, row: Any) -> None:
        wp_id = row["wp_id"]
        if not row["active"] or (row["email"] is not None and not row["email"]):
            await self._set_due(wp_id, row["touched"], None)
            return
        delay = self.delay if row["delay_seconds"] is None else row["delay_seconds"]
        mxid = f"@{row['localpart']}:{self.domain}"
        try:
            notes = await self.hs.notifications(mxid, row["covered_until"])
        except HomeserverError as e:
            attempts = row["check_attempts"] + 1
            wait = decide.check_backoff(attempts, 1, self.backoff_max)
            log.warning(
                "Notices: cannot read the notifications of person %s (%s); again in %.0fs",
                wp_id,
                describe(e),
                wait,
            )
            await self.db.execute(
                "UPDATE notify_person SET due_at = $2, check_attempts = $3 WHERE wp_id = $1",
                wp_id,
                time.time() + wait,
                attempts,
            )
            return
        now_ms = int(time.time() * 1000)
        decision = decide.decide(notes, now_ms, int(delay * 1000), row["covered_until"])
        log.debug(
            "Notices: person %s, %d notification(s): %s", wp_id, len(notes), type(decision).__name__
        )
        if isinstance(decision, decide.Close):
            await self._set_due(wp_id, row["touched"], None)
        elif isinstance(decision, decide.Later):
            await self._set_due(wp_id, row["touched"], decision.at_ms / 1000)
        else:
            await self._decide_notice(wp_id, row["touched"], decision, now_ms)

    async def _set_due(self, wp_id: int, touched: int, due: float | None) -> None:
        # Only if no message joined the window while the homeserver was asked: otherwise the
        # window stays due and is checked again at once, with that message among the rest.
        await self.db.execute(
            "UPDATE notify_person SET due_at = $3, check_attempts = 0"
            " WHERE wp_id = $1 AND touched = $2",
            wp_id,
            touched,
            due,
        )

    async def _decide_notice(
        self, wp_id: int, touched: int, decision: decide.Notify, now_ms: int
    ) -> None:
        notice_id = f"n-{uuid.uuid4().hex}"
        async with transaction(self.db) as conn:
            marks = ", ".join(f"${i + 1}" for i in range(len(decision.rooms)))
            matters = await conn.fetch(
                f"SELECT wp_id FROM matter WHERE room_id IN ({marks}) ORDER BY wp_id",
                *decision.rooms,
            )
            body = {
                "notice_id": notice_id,
                "person": wp_id,
                "matters": [m["wp_id"] for m in matters],
                "conversations": len(decision.rooms) - len(matters),
                "unread": decision.unread,
                "oldest_unread_ms": decision.oldest_ts,
            }
            await conn.execute(
                "UPDATE notify_person SET notice_id = $2, notice_body = $3, send_at = $4,"
                " send_attempts = 0, last_error = NULL, covered_until = $5, check_attempts = 0,"
                " due_at = CASE WHEN touched = $6 THEN NULL ELSE due_at END"
                " WHERE wp_id = $1 AND notice_id IS NULL",
                wp_id,
                notice_id,
                json.dumps(body, separators=(",", ":")),
                time.time(),
                now_ms,
                touched,
            )
        log.info(
            "Notice %s decided for person %s (%d unread in %d room(s))",
            notice_id,
            wp_id,
            decision.unread,
            len(decision.rooms),
        )
        self._wake.set()

    # --- 3. decisions → WordPress ----------------------------------------------------------

    async def send_due(self) -> int:
        if self.sender is None:
            return 0
        rows = await self.db.fetch(
            "SELECT wp_id, notice_id, notice_body, send_attempts FROM notify_person"
            " WHERE notice_id IS NOT NULL AND send_at <= $1 ORDER BY send_at LIMIT $2",
            time.time(),
            BATCH,
        )
        for row in rows:
            result = await self.sender.send(row["notice_body"].encode())
            if result.done or not result.retry:
                await self.db.execute(
                    "UPDATE notify_person SET notice_id = NULL, notice_body = NULL,"
                    " send_at = NULL, send_attempts = 0, last_error = $3"
                    " WHERE wp_id = $1 AND notice_id = $2",
                    row["wp_id"],
                    row["notice_id"],
                    None if result.done else result.outcome,
                )
                level = logging.INFO if result.done else logging.WARNING
                log.log(
                    level,
                    "Notice %s for person %s: WordPress answered %s",
                    row["notice_id"],
                    row["wp_id"],
                    result.outcome,
                )
                continue
            attempts = row["send_attempts"] + 1
            wait = decide.check_backoff(attempts, 1, self.backoff_max)
            await self.db.execute(
                "UPDATE notify_person SET send_at = $3, send_attempts = $4, last_error = $5"
                " WHERE wp_id = $1 AND notice_id = $2",
                row["wp_id"],
                row["notice_id"],
                time.time() + wait,
                attempts,
                result.outcome,
            )
            log.warning(
                "Notice %s for person %s not delivered to WordPress (%s); again in %.0fs",
                row["notice_id"],
                row["wp_id"],
                result.outcome,
                wait,
            )
        return len(rows)


def make_notices(
    settings: NotifySettings,
    wordpress: WordPressSettings,
    secret: str,
    db: Database,
    hs: AppService,
) -> NoticeService:
    """The notice service as the configuration says (e-mail only with wordpress.notice_url;
    `secret` is provisioning.shared_secret, which signs the calls to WordPress)."""
    url = wordpress.notice_url
    sender = NoticeSender(url, secret, wordpress.timeout) if url else None
    return NoticeService(
        db,
        NoticeHomeserver(hs),
        sender,
        bot_mxid=hs.bot_mxid,
        domain=hs.domain,
        delay=settings.delay,
        poll_interval=settings.poll_interval,
        backoff_max=settings.backoff_max,
    )
