"""Signed routes for the WordPress plugin: a person's notice preferences and unread count.

PUT/GET /_firm/v1/people/{id}/notices: what the person chose on their profile (e-mail or not,
and after how long). GET /_firm/v1/people/{id}/unread: the homeserver's unread counts for the
person, for the portal's menu and the admin bar; WordPress asks only for whoever is logged in.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..db import store, transaction
from ..homeserver import HomeserverError, describe
from ..provisioning.api import ProvisioningAPI
from ..web.errors import ApiError
from .decide import MAX_DELAY_SECONDS
from .service import NoticeService

log = logging.getLogger("bridge.notify.routes")


def parse_prefs(payload: Any) -> tuple[bool, int | None]:
    """(email, delay_seconds) from a body; ApiError naming the field otherwise."""
    if not isinstance(payload, dict):
        raise ApiError(400, "FIRM_BAD_FIELD", "must be a JSON object", "body")
    unknown = sorted(set(payload) - {"email", "delay_seconds"})
    if unknown:
        raise ApiError(400, "FIRM_BAD_FIELD", "is not a known field", unknown[0])
    email = payload.get("email")
    if not isinstance(email, bool):
        raise ApiError(400, "FIRM_BAD_FIELD", "must be true or false", "email")
    delay = payload.get("delay_seconds")
    if delay is not None and (
        not isinstance(delay, int) or isinstance(delay, bool) or not 0 < delay <= MAX_DELAY_SECONDS
    ):
        raise ApiError(
            400,
            "FIRM_BAD_FIELD",
            f"must be null (the firm's delay) or 1 to {MAX_DELAY_SECONDS} seconds",
            "delay_seconds",
        )
    return email, delay


class NoticeRoutes:
    def __init__(self, api: ProvisioningAPI, service: NoticeService) -> None:
        self.api = api
        self.service = service

    def routes(self) -> list[web.RouteDef]:
        wrap = self.api._wrap
        return [
            web.put("/people/{wp_id}/notices", wrap(self.put_prefs)),
            web.get("/people/{wp_id}/notices", wrap(self.get_prefs)),
            web.get("/people/{wp_id}/unread", wrap(self.unread)),
        ]

    async def _person(self, conn: Any, wp_id: int) -> Any:
        person = await store.get_person(conn, wp_id)
        if person is None:
            raise ApiError(404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id")
        return person

    def _view(self, wp_id: int, email: bool, delay: int | None) -> dict:
        return {
            "wp_id": wp_id,
            "email": email,
            "delay_seconds": delay,
            "effective_delay_seconds": self.service.delay if delay is None else delay,
            "emails_configured": self.service.emails,
        }

    async def put_prefs(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        email, delay = parse_prefs(payload)
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            await self._person(conn, wp_id)
            await conn.execute(
                "INSERT INTO notify_pref (wp_id, email, delay_seconds) VALUES ($1, $2, $3)"
                " ON CONFLICT (wp_id) DO UPDATE SET email = excluded.email,"
                " delay_seconds = excluded.delay_seconds",
                wp_id,
                email,
                delay,
            )
            if not email:
                # An open window closes now; a notice already decided is WordPress's to refuse.
                await conn.execute("UPDATE notify_person SET due_at = NULL WHERE wp_id = $1", wp_id)
        log.info(
            "Notice preferences of person %s: e-mail %s, delay %s",
            wp_id,
            "on" if email else "off",
            "firm's" if delay is None else f"{delay}s",
        )
        return self._view(wp_id, email, delay)

    async def get_prefs(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            await self._person(conn, wp_id)
            row = await conn.fetchrow(
                "SELECT email, delay_seconds FROM notify_pref WHERE wp_id = $1", wp_id
            )
        if row is None:
            return self._view(wp_id, True, None)
        return self._view(wp_id, bool(row["email"]), row["delay_seconds"])

    async def unread(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            person = await self._person(conn, wp_id)
            registered = await conn.fetchval(
                "SELECT registered FROM person WHERE wp_id = $1", wp_id
            )
        if not person.active or not registered:
            return {"wp_id": wp_id, "unread": 0, "rooms": 0, "highlights": 0}
        mxid = f"@{person.localpart}:{self.api.domain}"
        try:
            total, rooms, highlights = await self.service.hs.unread_counts(mxid)
        except HomeserverError as e:
            log.warning(
                "Unread count of person %s: the homeserver did not answer (%s)", wp_id, describe(e)
            )
            raise ApiError(
                503, "FIRM_HOMESERVER_UNAVAILABLE", "the homeserver did not answer"
            ) from None
        return {"wp_id": wp_id, "unread": total, "rooms": rooms, "highlights": highlights}
