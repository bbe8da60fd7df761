"""Provisioning API routes. Each request is verified, then applied in one DB transaction."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from mautrix.util.async_db import Database

from ..core.model import Matter, Person
from ..core.policy import CurrentPolicy
from ..db import store, transaction
from ..firm import matters, people
from ..firm.validate import BadField, parse_matter, parse_person, parse_wp_id
from ..module_link import ModuleClient
from ..reconciler import MATTER, PERSON, Reconciler
from ..web.auth import BODY, request_id
from ..web.errors import ApiError

log = logging.getLogger("bridge.provisioning")


class ProvisioningAPI:
    def __init__(
        self,
        db: Database,
        policy: CurrentPolicy,
        reconciler: Reconciler,
        *,
        max_skew: float,
        domain: str,
        alias_prefix: str,
        reserved_localparts: set[str],
        module: ModuleClient | None = None,
    ) -> None:
        self.db = db
        self.module = module
        self.policy = policy
        self.reconciler = reconciler
        self.max_skew = max_skew
        self.domain = domain
        self.alias_prefix = alias_prefix
        self.reserved = reserved_localparts

    def routes(self) -> list[web.RouteDef]:
        """Routes under FIRM_API, whose sub-application checks every request's signature."""
        return [
            web.put("/people/{wp_id}", self._wrap(self.put_person)),
            web.get("/people/{wp_id}", self._wrap(self.get_person)),
            web.post("/people/{wp_id}/deactivate", self._wrap(self.deactivate_person)),
            web.put("/matters/{wp_id}", self._wrap(self.put_matter)),
            web.get("/matters/{wp_id}", self._wrap(self.get_matter)),
        ]

    # --- plumbing ----------------------------------------------------------------------------

    def _wrap(
        self, handler: Callable[[web.Request, int, Any, str], Awaitable[dict]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The WordPress id from the path and the JSON body, for a signed request."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                raw_id = request.match_info.get("wp_id")
                wp_id = 0 if raw_id is None else parse_wp_id(raw_id)
            except BadField as e:
                raise self._bad(e) from None
            body = request[BODY]
            payload = None
            if request.method in ("PUT", "POST") and body:
                try:
                    payload = json.loads(body)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    raise ApiError(400, "FIRM_NOT_JSON", "body is not valid JSON", "body") from None
            return web.json_response(await handler(request, wp_id, payload, request_id(request)))

        return wrapped

    async def _claim(self, conn: Any, request_id: str) -> None:
        if not await store.claim_request_id(conn, request_id, time.time(), self.max_skew):
            raise ApiError(
                409, "FIRM_REPLAYED", "this request id was already used", "X-Firm-Request-Id"
            )

    @staticmethod
    def _bad(e: BadField) -> ApiError:
        return ApiError(400, "FIRM_BAD_FIELD", e.message, e.field)

    # --- people ------------------------------------------------------------------------------

    async def put_person(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        try:
            data = parse_person(payload)
        except BadField as e:
            raise self._bad(e) from None
        async with transaction(self.db) as conn:
            await self._claim(conn, rid)
            try:
                _, changed, departure = await people.put_person(conn, wp_id, data, self.reserved)
            except BadField as e:
                raise self._bad(e) from None
            result = await self._person_view(conn, wp_id)
            generation = await store.generation(conn)
        if changed:
            log.info("Person %s updated (role %s, active %s)", wp_id, data.role.value, data.active)
            self.reconciler.notify([(PERSON, wp_id)])
        if departure is not None and not departure["already_departed"]:
            await self._homeserver_holds(wp_id, generation)
        if departure is not None:
            result["departure"] = departure
        return result

    async def deactivate_person(
        self, request: web.Request, wp_id: int, payload: Any, rid: str
    ) -> dict:
        async with transaction(self.db) as conn:
            await self._claim(conn, rid)
            departure = await people.depart(conn, wp_id)
            if departure is None:
                raise ApiError(
                    404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id"
                )
            result = await self._person_view(conn, wp_id)
            generation = await store.generation(conn)
        if not departure["already_departed"]:
            log.info(
                "Person %s departed; %d matter(s) pass to %s (%d not: walled off)",
                wp_id,
                len(departure["matters"]),
                departure["successor"],
                len(departure["walled_off"]),
            )
            self.reconciler.notify([(PERSON, wp_id)])
            await self._homeserver_holds(wp_id, generation)
        result["departure"] = departure
        return result

    async def _homeserver_holds(self, wp_id: int, generation: int) -> None:
        """A departure holds on the homeserver before its call answers: the module reads the
        firm's state now (no new session, login token or message of theirs after the answer),
        instead of within its refresh interval. Bounded: a module that cannot confirm is logged,
        and refuses firm actions on its own once its state is stale."""
        if self.module is not None and not await self.module.hold_generation(generation):
            log.warning(
                "The homeserver module did not confirm the departure of person %s within 5 s",
                wp_id,
            )

    async def get_person(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        async with transaction(self.db) as conn:
            await self._claim(conn, rid)
            if await store.get_person(conn, wp_id) is None:
                raise ApiError(
                    404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id"
                )
            return await self._person_view(conn, wp_id)

    async def _person_view(self, conn: Any, wp_id: int) -> dict:
        person = await store.get_person(conn, wp_id)
        assert person is not None
        sync = await store.person_sync_row(conn, wp_id)
        rows = await conn.fetch(
            "SELECT a.matter_id, a.capacity, m.room_id FROM matter_assignment a"
            " JOIN matter m ON m.wp_id = a.matter_id WHERE a.person_id = $1 ORDER BY a.matter_id",
            wp_id,
        )
        return {
            "wp_id": person.wp_id,
            "user_id": self._mxid(person),
            "login": person.login,
            "display_name": person.display_name,
            "role": person.role.value,
            "active": person.active,
            "supervisor": person.supervisor_id,
            "attorneys": list(person.attorney_ids),
            "matters": [
                {"wp_id": r["matter_id"], "capacity": r["capacity"], "room_id": r["room_id"]}
                for r in rows
            ],
            "sync": _sync(sync),
        }

    def _mxid(self, person: Person) -> str:
        return f"@{person.localpart}:{self.domain}"

    # --- matters -----------------------------------------------------------------------------

    async def put_matter(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        try:
            data = parse_matter(payload)
        except BadField as e:
            raise self._bad(e) from None
        async with transaction(self.db) as conn:
            await self._claim(conn, rid)
            try:
                matter, changed = await matters.upsert_matter(
                    conn, wp_id, data, self.policy.value, self.alias_prefix
                )
            except BadField as e:
                raise self._bad(e) from None
            result = await self._matter_view(conn, wp_id)
        if changed:
            log.info(
                "Matter %s updated (%s, %d assigned, %d walled off)",
                wp_id,
                data.status.value,
                len(data.assignments),
                len(matter.walled_off),
            )
            self.reconciler.notify([(MATTER, wp_id)])
        return result

    async def get_matter(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        async with transaction(self.db) as conn:
            await self._claim(conn, rid)
            if await store.get_matter(conn, wp_id) is None:
                raise ApiError(
                    404, "FIRM_NOT_FOUND", f"no matter with WordPress id {wp_id}", "wp_id"
                )
            return await self._matter_view(conn, wp_id)

    async def _matter_view(self, conn: Any, wp_id: int) -> dict:
        matter = await store.get_matter(conn, wp_id)
        assert matter is not None
        people = await store.get_people(conn, list(matter.assignments))
        members = self.policy.value.matter_members(
            matter.privileged, [(self._mxid(p), p.role, p.active) for p in people.values()]
        )
        return {
            "wp_id": matter.wp_id,
            "number": matter.number,
            "title": matter.title,
            "privileged": matter.privileged,
            "status": matter.status.value,
            "room_id": matter.room_id,
            "alias": f"#{matter.alias_localpart}:{self.domain}",
            "assignments": _assignments(matter, people, self._mxid),
            "walled_off": sorted(matter.walled_off),
            "members": sorted(members),
            "power_levels": self.policy.value.matter_power_levels(members, matter.status),
            "sync": _sync(await store.matter_sync_row(conn, wp_id)),
        }


def _assignments(
    matter: Matter, people: dict[int, Person], mxid: Callable[[Person], str]
) -> list[dict]:
    return [
        {"wp_id": pid, "capacity": cap.value, "user_id": mxid(people[pid])}
        for pid, cap in sorted(matter.assignments.items())
        if pid in people
    ]


def _sync(row: Any) -> dict:
    synced = row["synced_version"] >= row["desired_version"]
    state = "synced" if synced else ("retrying" if row["attempts"] else "pending")
    return {
        "state": state,
        "desired_version": row["desired_version"],
        "synced_version": row["synced_version"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }
