"""The bridge's side of its link with the homeserver module.

The module reads the firm's state from the bridge (snapshot) and asks it to check WordPress
passwords; the bridge asks the module to mint single-use login tokens for the portal. Both ways
are authenticated with the module secret (a bearer token, compared in constant time) over the
firm's internal network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections import OrderedDict
from typing import Any

from aiohttp import web
from mautrix.util.async_db import Database, Scheme

from . import metrics
from .core.constants import (
    DISPLAYNAME_PATH,
    INTERNAL_PREFIX,
    LOGIN_PATH,
    MINT_PATH,
    REFRESH_PATH,
    SNAPSHOT_PATH,
)
from .core.policy import CurrentPolicy
from .core.snapshot_delta import SnapshotIndex, delta, index
from .db import store, transaction
from .homeserver import HomeserverClient, HomeserverError
from .web.auth import bearer_secret
from .web.errors import json_error
from .wordpress import WordPress, WordPressRateLimited, WordPressUnavailable

log = logging.getLogger("bridge.module_link")
# Generations whose index is kept for deltas (the module reads every second; a few suffice).
DELTA_GENERATIONS = 8


class ModuleRoutes:
    """Served by the bridge, called by the homeserver module."""

    def __init__(
        self,
        db: Database,
        policy: CurrentPolicy,
        wordpress: WordPress | None,
        *,
        secret: str,
        domain: str,
        bridge_user: str,
    ) -> None:
        self.db = db
        self.policy = policy
        self.wordpress = wordpress
        self._secret = secret
        self.domain = domain
        self.bridge_user = bridge_user
        # Generations restart with a new or restored database; the epoch keeps ETags unique.
        self._epoch = secrets.token_hex(8)
        self._built: tuple[dict[str, Any], SnapshotIndex] | None = None  # the newest snapshot
        self._indexes: OrderedDict[int, SnapshotIndex] = OrderedDict()

    def app(self) -> web.Application:
        """The routes under INTERNAL_PREFIX, for the homeserver module alone (its secret)."""
        app = web.Application(middlewares=[bearer_secret(self._secret)])
        app.add_routes(
            [
                web.get(SNAPSHOT_PATH.removeprefix(INTERNAL_PREFIX), self.snapshot),
                web.post(LOGIN_PATH.removeprefix(INTERNAL_PREFIX), self.login),
            ]
        )
        return app

    async def snapshot(self, request: web.Request) -> web.Response:
        async with transaction(self.db) as conn:
            if conn.scheme == Scheme.POSTGRES:
                # Every read of the snapshot from one moment: a snapshot labelled with a
                # generation must hold exactly that generation's state, or a later delta from
                # it would leave out a change for good. (SQLite's transactions already are.)
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            generation = await store.generation(conn)
            etag = f"{self._epoch}.{generation}"
            if request.headers.get("If-None-Match") == etag:
                metrics.SNAPSHOT_READS.labels("unchanged").inc()
                return web.Response(status=304, headers={"ETag": etag})
            if self._built is not None and self._built[1].generation == generation:
                data, current = self._built
            else:
                data = await store.snapshot(conn, self.domain)
                # The policy as of this generation: from the same transaction, not the
                # in-memory one, which is replaced only after its change has committed.
                stored = await store.stored_policy(conn)
                data.update(
                    generation=generation,
                    etag=etag,
                    bridge_user=self.bridge_user,
                    policy=json.loads(stored) if stored else self.policy.value.to_data(),
                )
                current = self._remember(data)
        base = self._base(request.query.get("since"))
        if base is not None and base.generation < generation:
            body = delta(base, data, current)
            body.update(generation=generation, etag=etag, bridge_user=self.bridge_user)
            metrics.SNAPSHOT_READS.labels("delta").inc()
            return web.json_response(body, headers={"ETag": etag})
        metrics.SNAPSHOT_READS.labels("whole").inc()
        return web.json_response(data, headers={"ETag": etag})

    def _remember(self, data: dict[str, Any]) -> SnapshotIndex:
        current = index(data)
        self._built = (data, current)
        self._indexes[current.generation] = current
        while len(self._indexes) > DELTA_GENERATIONS:
            self._indexes.popitem(last=False)
        return current

    def _base(self, since: str | None) -> SnapshotIndex | None:
        """The kept index of the generation the module holds (its ETag), if this bridge run
        served it."""
        epoch, _, generation = (since or "").partition(".")
        if epoch != self._epoch or not generation.isdigit():
            return None
        return self._indexes.get(int(generation))

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            login, password = body["login"], body["password"]
            if not isinstance(login, str) or not isinstance(password, str) or not login:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return json_error(400, "M_BAD_JSON", "expected login and password")
        # The end user's address as the homeserver saw it: WordPress limits failures per
        # address and lets a known address past a lock others caused (not the homeserver's).
        address = body.get("address")
        if address is not None:
            try:
                address = str(ipaddress.ip_address(address))
            except (ValueError, TypeError):
                return json_error(400, "M_BAD_JSON", "address: must be an IP address")
        if self.wordpress is None:
            return json_error(403, "M_FORBIDDEN", "password login is not configured")
        # Matrix clients may send "jdoe", "@jdoe:firm.example" or the WordPress login as typed.
        name = login.removeprefix("@").split(":", 1)[0].lower()
        row = await self.db.fetchrow(
            "SELECT wp_id, login, localpart, active FROM person"
            " WHERE lower(login) = $1 OR localpart = $1 ORDER BY lower(login) = $1 DESC LIMIT 1",
            name,
        )
        # WordPress is asked whatever the login: refusing an unknown or departed one at once
        # (a fraction of a millisecond, against a password hash's time) would tell anyone who
        # is a firm person. WordPress spends a real hash's time on a login it does not know.
        try:
            check = await self.wordpress.check_login(
                row["login"] if row is not None else name, password, address
            )
        except WordPressRateLimited as e:
            log.info("Password login refused: WordPress's %s limit of failures is reached", e.limit)
            return web.json_response(
                {
                    "errcode": "M_LIMIT_EXCEEDED",
                    "error": "too many failed logins; try again later",
                    "retry_after_ms": e.retry_after_ms,
                },
                status=429,
            )
        except WordPressUnavailable:
            return json_error(
                503, "FIRM_WORDPRESS_UNAVAILABLE", "WordPress could not check the login"
            )
        if row is None or not row["active"]:
            log.info("Password login refused: no active person for the login given")
            return json_error(403, "M_FORBIDDEN", "invalid username or password")
        if not check.valid or not check.active or check.wp_id != row["wp_id"]:
            log.info("Password login refused for person %s", row["wp_id"])
            return json_error(403, "M_FORBIDDEN", "invalid username or password")
        user_id = f"@{row['localpart']}:{self.domain}"
        log.info("Password login accepted for person %s (%s)", row["wp_id"], user_id)
        return web.json_response({"user_id": user_id})


class ModuleUnavailable(ConnectionError):
    """The homeserver module did not do what the bridge asked (down, or refused)."""


class ModuleClient:
    """Calls the homeserver module's own endpoints: login tokens for the portal widget, the
    firm's names for people, and reading the firm's state now. `client` is the homeserver's,
    with the module secret as its token."""

    def __init__(self, client: HomeserverClient) -> None:
        self.client = client

    async def _post(self, path: str, body: dict, timeout: float = 10) -> tuple[int, Any]:
        try:
            return 200, await self.client.request("POST", path, body, timeout=timeout)
        except HomeserverError as e:
            if e.status == 0:
                log.warning("The homeserver module is unreachable: %s", e.message)
                raise ModuleUnavailable("homeserver module unreachable") from None
            return e.status, None

    async def mint_login_token(self, user_id: str) -> dict | None:
        """A single-use, short-lived m.login.token for this person; None if the module refuses."""
        status, data = await self._post(MINT_PATH, {"user_id": user_id})
        if status == 200 and isinstance(data, dict):
            return data
        log.warning("The homeserver module refused a login token: HTTP %d", status)
        return None

    async def set_displayname(self, user_id: str, name: str | None) -> None:
        """The firm's name for a person, globally and in every room (people cannot set it)."""
        status, _ = await self._post(DISPLAYNAME_PATH, {"user_id": user_id, "displayname": name})
        if status != 200:
            raise ModuleUnavailable(f"the homeserver module refused a display name: HTTP {status}")

    async def hold_generation(self, generation: int, within: float = 5.0) -> bool:
        """Have the module read the firm's state now, until it holds `generation` (or a later
        one); False if that did not happen within `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                status, data = await self._post(REFRESH_PATH, {}, timeout=left)
            except ModuleUnavailable:
                status, data = 0, None
            held = data.get("generation") if isinstance(data, dict) else None
            if status == 200 and isinstance(held, int) and held >= generation:
                return True
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
