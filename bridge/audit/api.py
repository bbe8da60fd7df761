"""Signed HTTP routes for the WordPress plugin: audit queries, exports, verify, the head, and the
retention dry run. Signed exactly like the provisioning API (the sub-application's middleware
checks it, bridge/web/auth.py), request ids claimed once; every call names the administrator
reading (`actor`, a WordPress id), and every read is recorded in the chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from mautrix.util.async_db import Database

from ..db import store as firm_store
from ..db import transaction
from ..web.auth import request_id
from ..web.errors import ApiError
from .query import AuditQuery, BadQuery, exported, parse_query, parse_time, to_csv
from .records import now_ms
from .service import AuditService

log = logging.getLogger("bridge.audit.api")
Handler = Callable[[Any, str], Awaitable[web.StreamResponse]]


class AuditAPI:
    def __init__(self, service: AuditService, db: Database, *, max_skew: float) -> None:
        self.service = service
        self.db = db
        self.max_skew = max_skew

    def routes(self) -> list[web.RouteDef]:
        """Routes under FIRM_API, whose sub-application checks every request's signature."""
        return [
            web.get("/audit/records", self._wrap(self.parse_records, self.records)),
            web.get("/audit/verify", self._wrap(_no_params, self.verify)),
            web.get("/audit/head", self._wrap(_no_params, self.head)),
            web.get("/audit/retention", self._wrap(self.parse_retention, self.retention)),
        ]

    def _wrap(
        self, parse: Callable[[dict[str, str]], Any], run: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                params: dict[str, str] = {}
                for key, value in request.query.items():
                    if key in params:
                        raise ApiError(400, "FIRM_BAD_FIELD", "is given twice", key)
                    params[key] = value
                actor_raw = params.pop("actor", None)
                # Everything is checked before anything is written (the request id included).
                parsed = parse(params)
                actor = await self._claim_and_check(request_id(request), actor_raw)
                return await run(parsed, actor)
            except BadQuery as e:
                raise ApiError(400, "FIRM_BAD_FIELD", e.message, e.field) from None

        return wrapped

    async def _claim_and_check(self, request_id: str, actor_raw: str | None) -> str:
        if not actor_raw:
            raise ApiError(
                400, "FIRM_BAD_FIELD", "is required: the WordPress id of who reads", "actor"
            )
        if not actor_raw.isdigit() or not 0 < int(actor_raw) < 10**18:
            raise ApiError(
                400, "FIRM_BAD_FIELD", "must be a positive integer WordPress id", "actor"
            )
        async with transaction(self.db) as conn:
            if not await firm_store.claim_request_id(conn, request_id, time.time(), self.max_skew):
                raise ApiError(
                    409, "FIRM_REPLAYED", "this request id was already used", "X-Firm-Request-Id"
                )
            row = await conn.fetchrow(
                "SELECT role, active FROM person WHERE wp_id = $1", int(actor_raw)
            )
        # The role table: only administrators read the audit (and that reading is logged).
        if row is None or row["role"] != "administrator" or not row["active"]:
            raise ApiError(
                403,
                "FIRM_FORBIDDEN",
                f"person {actor_raw} is not an active administrator",
                "actor",
            )
        return f"wp:{actor_raw}"

    @staticmethod
    def parse_records(params: dict[str, str]) -> tuple[AuditQuery, str]:
        fmt = params.pop("format", "json")
        if fmt not in ("json", "csv"):
            raise BadQuery("format", "must be json or csv")
        return parse_query(params), fmt

    async def records(self, parsed: tuple[AuditQuery, str], actor: str) -> web.StreamResponse:
        q, fmt = parsed
        records = await self.service.query(q, actor, "api", fmt)
        next_after = records[-1]["seq"] if len(records) == q.limit else None
        if fmt == "csv":
            resp = web.Response(text=to_csv(records), content_type="text/csv")
            if next_after is not None:
                resp.headers["X-Firm-Next-After"] = str(next_after)
            return resp
        return web.json_response(
            {"records": [exported(r) for r in records], "next_after": next_after}
        )

    async def verify(self, parsed: None, actor: str) -> web.StreamResponse:
        verdict = await self.service.verify(actor)
        return web.json_response(verdict.to_dict())

    async def head(self, parsed: None, actor: str) -> web.StreamResponse:
        return web.json_response(await self.service.export_head(actor))

    @staticmethod
    def parse_retention(params: dict[str, str]) -> int:
        as_of = params.pop("as_of", None)
        _no_params(params)
        return parse_time(as_of, "as_of") if as_of else now_ms()

    async def retention(self, now: int, actor: str) -> web.StreamResponse:
        report = await self.service.retention_report(now, actor, via="api")
        return web.json_response(report)


def _no_params(params: dict[str, str]) -> None:
    if params:
        raise BadQuery(next(iter(params)), "is not a known parameter")
