"""The appservice side: transactions and pings from the homeserver.

Transactions are recorded in the DB in the same DB transaction as their effects, so one retried
by the homeserver after a crash is applied exactly once. A transaction is the same only when its
id and its content are: Synapse on SQLite numbers transactions from 1 again after a restart, so
an id alone would take new events for ones already applied and drop them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Protocol

from aiohttp import web
from mautrix.util.async_db import Database

from . import metrics
from .core.constants import MANAGED_STATE
from .db import store, transaction
from .reconciler import MATTER, Reconciler
from .web.auth import TooLarge, homeserver_token, read_body
from .web.errors import json_error

log = logging.getLogger("bridge.appservice")

# State whose change by anyone but the bridge is drift to repair.
WATCHED_STATE = frozenset({"m.room.member", *MANAGED_STATE})


class EventSink(Protocol):
    """Something else that needs every event the homeserver sends (audit, media index).

    Called inside the transaction's DB transaction, so its writes commit together with the
    transaction id: applied exactly once, or not at all (the homeserver then retries).
    """

    async def on_events(self, conn: Any, events: list[dict]) -> None: ...


# The homeserver sends up to 100 events of up to 64 KiB each, with ephemeral and to-device
# events besides, and resends a refused transaction unchanged forever: the app-wide 1 MiB body
# limit would stop the appservice for good after one burst of large events.
MAX_TRANSACTION_BYTES = 64 * 1024 * 1024
PREFIX = "/_matrix/app/v1"


def body_hash(body: dict) -> str:
    """What makes two deliveries one transaction: its content, without each event's `unsigned`.

    Synapse serializes a transaction again for each attempt, and `unsigned` (the event's age,
    among others) differs between attempts of the same transaction; the rest does not.
    """
    content = dict(body)
    events = content.get("events")
    if isinstance(events, list):
        content["events"] = [
            {k: v for k, v in e.items() if k != "unsigned"} if isinstance(e, dict) else e
            for e in events
        ]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AppServiceHandler:
    def __init__(self, db: Database, reconciler: Reconciler, hs_token: str, bot_mxid: str) -> None:
        self.db = db
        self.reconciler = reconciler
        self._hs_token = hs_token
        self.bot_mxid = bot_mxid
        self.sinks: list[EventSink] = []

    def app(self) -> web.Application:
        """The routes under /_matrix/app/v1, for the homeserver alone (its hs_token)."""
        app = web.Application(middlewares=[homeserver_token(self._hs_token, self._refused)])
        app.add_routes(
            [
                web.put("/transactions/{txn_id}", self.transaction),
                web.post("/ping", self.ping),
                web.get("/users/{user_id}", self.query),
                web.get("/rooms/{alias}", self.query),
            ]
        )
        return app

    def _refused(self, request: web.Request) -> None:
        if request.match_info.handler == self.transaction:
            metrics.TRANSACTIONS.labels("unauthorized").inc()

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def query(self, request: web.Request) -> web.Response:
        # People and matter rooms exist because WordPress said so, never on demand.
        return json_error(404, "M_NOT_FOUND", "not provisioned")

    async def transaction(self, request: web.Request) -> web.Response:
        txn_id = request.match_info["txn_id"]
        try:
            raw = await read_body(request, MAX_TRANSACTION_BYTES)
        except TooLarge:
            metrics.TRANSACTIONS.labels("too_large").inc()
            return json_error(413, "M_TOO_LARGE", "transaction body is over the bridge's limit")
        try:
            body = json.loads(raw)
            events = body.get("events", [])
            if not isinstance(events, list):
                raise ValueError
        except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
            metrics.TRANSACTIONS.labels("bad_request").inc()
            return json_error(
                400, "M_NOT_JSON", "transaction body must be a JSON object with events"
            )
        digest = body_hash(body)
        touched: set[int] = set()
        async with transaction(self.db) as conn:
            seen = {
                r["body_hash"]
                for r in await conn.fetch(
                    "SELECT body_hash FROM appservice_txn WHERE txn_id = $1", txn_id
                )
            }
            if digest in seen:
                metrics.TRANSACTIONS.labels("duplicate").inc()
                log.debug("Transaction %s already applied", txn_id)
                return web.json_response({})
            if seen:
                metrics.TRANSACTIONS.labels("reused_id").inc()
                log.warning(
                    "Transaction id %s reused with other content (a restarted homeserver"
                    " numbering from 1 again?); applying it",
                    txn_id,
                )
            await conn.execute(
                "INSERT INTO appservice_txn (txn_id, body_hash, received_at) VALUES ($1, $2, $3)",
                txn_id,
                digest,
                time.time(),
            )
            valid = [e for e in events if isinstance(e, dict)]
            for sink in self.sinks:
                await sink.on_events(conn, valid)
            for event in valid:
                matter_id = await self._drift_matter(conn, event)
                if matter_id is not None and matter_id not in touched:
                    touched.add(matter_id)
                    await store.mark_matter_dirty(conn, matter_id)
        metrics.TRANSACTIONS.labels("applied").inc()
        log.debug(
            "Transaction %s: %d event(s), %d room(s) to check", txn_id, len(events), len(touched)
        )
        if touched:
            self.reconciler.notify((MATTER, m) for m in touched)
        return web.json_response({})

    async def _drift_matter(self, conn: Any, event: Any) -> int | None:
        """The matter whose room this event may have pushed away from the desired state."""
        if event.get("type") not in WATCHED_STATE:
            return None
        if not isinstance(event.get("room_id"), str) or not isinstance(event.get("content"), dict):
            return None
        if "state_key" not in event or event.get("sender") == self.bot_mxid:
            return None
        content = event["content"]
        if (
            event["type"] == "m.room.member"
            and content.get("membership") == "join"
            and event.get("sender") == event.get("state_key")
        ):
            # Joining needs the bridge's invite; the bridge joins people itself.
            return None
        return await conn.fetchval(
            "SELECT wp_id FROM matter WHERE room_id = $1", event.get("room_id")
        )
