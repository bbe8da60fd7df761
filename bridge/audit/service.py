"""The audit trail and retention as one component of the bridge (see bridge/app.py)."""

from __future__ import annotations

import asyncio
import getpass
import logging
import time
from collections.abc import Mapping
from typing import Any

from mautrix.util.async_db import Database

from ..db import transaction
from ..homeserver import AppService, HomeserverAdmin, HomeserverError
from ..settings import AuditSettings, RetentionSettings
from ..tasks import stop_tasks
from . import enforce, store
from .chain import Verdict, Verifier
from .gapfill import fill_gaps
from .headsign import HeadSigner
from .ingest import AuditSink, Sealer
from .query import AuditQuery, fetch
from .records import note_row, now_ms
from .whois import WhoisCache

log = logging.getLogger("bridge.audit")
PAGE = 5000


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


class NoAdminToken(Exception):
    """Retention enforcement needs homeserver.admin_token."""


class AuditService:
    def __init__(
        self,
        settings: AuditSettings,
        retention: RetentionSettings,
        db: Database,
        bot: AppService,
        admin: HomeserverAdmin | None,
    ) -> None:
        """`bot` reads timelines as the bridge's user; `admin` (with homeserver.admin_token)
        gives client addresses and enforces retention."""
        self.settings = settings
        self.retention = retention
        self.db = db
        self.domain = bot.domain
        bot_mxid = bot.bot_mxid
        self.admin = admin
        self.whois = (
            WhoisCache(self.admin, self.domain, settings.whois_cache, skip={bot_mxid})
            if self.admin
            else None
        )
        self.sealer = Sealer(db, self.whois, whois_wait=settings.whois_wait)
        self.sink = AuditSink(self.sealer, bot_mxid)
        self.bot = bot
        self.defaults = {
            "open_days": retention.open_days,
            "closed_days": retention.closed_days,
            "media_days": retention.media_days,
        }
        self._signer: HeadSigner | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def signer(self) -> HeadSigner:
        if self._signer is None:
            self._signer = HeadSigner.load(self.settings.signing_key)
        return self._signer

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.admin is None:
            log.warning(
                "homeserver.admin_token is not set: audit records go without client addresses"
                " and retention is not enforced"
            )
        self._tasks = [
            asyncio.create_task(self.sealer.run(), name="audit-sealer"),
            asyncio.create_task(self._gap_fill_when_up(), name="audit-gap-fill"),
        ]
        if self.retention.enabled:
            self._tasks.append(asyncio.create_task(self._retention_loop(), name="audit-retention"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks, "the audit")
        self._tasks = []

    async def _gap_fill_when_up(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.bot.whoami()
                break
            except HomeserverError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        try:
            await fill_gaps(
                self.db,
                self.bot,
                self.admin,
                self.sealer,
                self.settings.gap_fill_max_events,
            )
        except Exception:
            log.exception("Gap fill failed")

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retention.interval)
            try:
                result = await self.retention_run(now_ms(), "retention")
                log.info(
                    "Retention run: %d matter(s) purged, %d attachment(s) deleted, %d error(s)",
                    len(result["purged"]),
                    len(result["deleted_media"]),
                    len(result["errors"]),
                )
            except Exception:
                log.exception("Retention run failed")

    # --- records about the audit itself ------------------------------------------------------

    async def note(self, kind: str, actor: str, detail: Mapping[str, Any]) -> None:
        async with transaction(self.db) as conn:
            await store.add_pending(conn, [note_row(kind, actor, detail)])
        self.sealer.wake()

    # --- verification and the head -----------------------------------------------------------

    async def verify(
        self, actor: str, anchors: Mapping[int, str] | None = None, record: bool = True
    ) -> Verdict:
        """Walk the whole chain (streaming, a page at a time) and record that it was checked."""
        await self.sealer.flush()
        async with store.acquire(self.db) as conn:
            head = await store.head(conn)
        v = Verifier(head, anchors)
        after = 0
        while True:
            async with store.acquire(self.db) as conn:
                rows = await store.records_after(conn, after, PAGE)
                if rows and rows[-1]["seq"] > head[0]:
                    # Records appended while walking are part of the chain if the head moved
                    # past them; anything beyond the current head was not appended by the bridge.
                    head = await store.head(conn)
                    v.head = head
            if not rows:
                break
            for r in rows:
                if not v.feed(r):
                    break
            if v.problem is not None:
                break
            after = rows[-1]["seq"]
        verdict = v.finish()
        if record:
            await self.note("audit_verify", actor, verdict.to_dict())
        if not verdict.ok:
            assert verdict.problem is not None
            log.error("Audit chain verification failed: %s", verdict.problem.message)
        return verdict

    async def export_head(self, actor: str) -> dict[str, Any]:
        await self.sealer.flush()
        async with store.acquire(self.db) as conn:
            seq, head_hash = await store.head(conn)
        export = self.signer.export(self.domain, seq, head_hash, seq)
        await self.note("audit_head", actor, {"seq": seq, "hash": head_hash})
        return export

    # --- queries -----------------------------------------------------------------------------

    async def query(self, q: AuditQuery, actor: str, via: str, fmt: str) -> list[dict]:
        """One page of records; the read is recorded in the same DB transaction."""
        await self.sealer.flush()
        async with transaction(self.db) as conn:
            records = await fetch(conn, q, self.domain)
            await store.add_pending(
                conn,
                [
                    note_row(
                        "audit_read",
                        actor,
                        {
                            "query": q.describe(),
                            "via": via,
                            "format": fmt,
                            "returned": len(records),
                        },
                    )
                ],
            )
        self.sealer.wake()
        return records

    # --- retention ---------------------------------------------------------------------------

    async def retention_report(self, now: int, actor: str, via: str = "retention") -> dict:
        await self.sealer.flush()
        report = await enforce.build_report(
            self.db,
            self.admin,
            self.defaults,
            self.retention.media_window,
            self.domain,
            now,
        )
        await self.note(
            "audit_read",
            actor,
            {
                "query": {"retention_report": now},
                "via": via,
                "format": "json",
                "returned": sum(len(m["messages"]) for m in report["matters"])
                + len(report.get("media") or []),
            },
        )
        return report

    async def retention_run(self, now: int, actor: str) -> dict:
        """Build the report as of `now` and carry it out."""
        if self.admin is None:
            raise NoAdminToken("retention needs homeserver.admin_token")
        if now > now_ms() + 60_000:
            # A report may look ahead; a run deletes, and must not delete what is not due yet.
            raise ValueError("a retention run cannot be as of a time in the future")
        started = time.monotonic()
        report = await self.retention_report(now, actor)
        result = await enforce.apply_report(
            self.db, self.admin, self.bot, self.sealer, report, actor, self.defaults
        )
        result["report"] = report
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
