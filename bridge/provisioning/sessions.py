"""Portal sessions: a single-use login token for the WordPress user the plugin names."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..db import store, transaction
from ..module_link import ModuleClient
from ..web.errors import ApiError
from .api import ProvisioningAPI

log = logging.getLogger("bridge.provisioning.sessions")


class SessionRoutes:
    def __init__(self, api: ProvisioningAPI, module: ModuleClient, homeserver_url: str) -> None:
        self.api = api
        self.module = module
        self.homeserver_url = homeserver_url

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/people/{wp_id}/login-token", self.api._wrap(self.login_token))]

    async def login_token(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            person = await store.get_person(conn, wp_id)
            registered = await conn.fetchval(
                "SELECT registered FROM person WHERE wp_id = $1", wp_id
            )
        if person is None:
            raise ApiError(404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id")
        if not person.active:
            raise ApiError(403, "FIRM_DEPARTED", f"person {wp_id} has departed", "wp_id")
        if not registered:
            raise ApiError(
                409, "FIRM_NOT_READY", "the person's account is not created yet", "wp_id"
            )
        user_id = f"@{person.localpart}:{self.api.domain}"
        try:
            minted = await self.module.mint_login_token(user_id)
        except ConnectionError:
            raise ApiError(
                503, "FIRM_HOMESERVER_UNAVAILABLE", "the homeserver is unreachable"
            ) from None
        if minted is None:
            raise ApiError(403, "FIRM_REFUSED", "the homeserver refused a session for this person")
        log.info("Portal login token issued for person %s", wp_id)
        return {
            "user_id": user_id,
            "login_token": minted["login_token"],
            "expires_in_ms": minted["expires_in_ms"],
            "homeserver": self.homeserver_url,
        }
