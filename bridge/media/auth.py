"""Who is asking: the requester's access token, checked with the homeserver's whoami.

Results are cached in memory for a few seconds, keyed by a hash of the token (the token itself is
neither kept as a key nor ever logged): a page of thumbnails is one whoami, not fifty. The cost is
that a token revoked by logout or departure still opens the gateway for up to TOKEN_TTL seconds;
membership, which decides what it opens, is never cached.
"""

from __future__ import annotations

import hashlib
import logging
import time

from aiohttp import web

from ..homeserver import AppService, HomeserverError
from ..web.auth import bearer_token
from .policy import Refusal

log = logging.getLogger("bridge.media.auth")

TOKEN_TTL = 10.0
MAX_CACHED = 10_000


def access_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer`, or the deprecated ?access_token= parameter."""
    return bearer_token(request) or request.query.get("access_token") or None


class Tokens:
    def __init__(self, hs: AppService, ttl: float = TOKEN_TTL) -> None:
        self._hs = hs
        self._ttl = ttl
        self._cache: dict[bytes, tuple[str, float]] = {}

    async def user_id(self, token: str | None) -> str:
        """The Matrix id the token belongs to. Raises Refusal (401, or 502 if unreachable)."""
        if not token:
            raise Refusal(401, "M_MISSING_TOKEN", "an access token is required")
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[1] > now:
            return hit[0]
        try:
            user_id, _ = await self._hs.whoami_of(token)
        except HomeserverError as e:
            if e.status == 0:
                log.warning("Homeserver whoami failed: %s", e.message)
                raise Refusal(502, "M_UNKNOWN", "the homeserver is unreachable") from None
            if e.status in (401, 403):
                raise Refusal(401, "M_UNKNOWN_TOKEN", "the access token is not valid") from None
            log.warning("Homeserver whoami answered %s", e.status)
            raise Refusal(
                502, "M_UNKNOWN", "the homeserver could not check the access token"
            ) from None
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[key] = (user_id, now + self._ttl)
        return user_id
