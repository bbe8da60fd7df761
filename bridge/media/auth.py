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

from aiohttp import ClientError, ClientSession, web

from .policy import Refusal

log = logging.getLogger("bridge.media.auth")

TOKEN_TTL = 10.0
MAX_CACHED = 10_000


def access_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer`, or the deprecated ?access_token= parameter."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("access_token") or None


class Tokens:
    def __init__(self, session: ClientSession, hs_url: str, ttl: float = TOKEN_TTL) -> None:
        self._session = session
        self._url = f"{hs_url}/_matrix/client/v3/account/whoami"
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
            async with self._session.get(
                self._url, headers={"Authorization": f"Bearer {token}"}
            ) as r:
                body = await r.json(content_type=None) if r.status == 200 else None
                status = r.status
        except (ClientError, TimeoutError, ValueError) as e:
            log.warning("Homeserver whoami failed: %s", type(e).__name__)
            raise Refusal(502, "M_UNKNOWN", "the homeserver is unreachable") from None
        if status in (401, 403):
            raise Refusal(401, "M_UNKNOWN_TOKEN", "the access token is not valid")
        user_id = body.get("user_id") if isinstance(body, dict) else None
        if status != 200 or not isinstance(user_id, str):
            log.warning("Homeserver whoami answered %s", status)
            raise Refusal(502, "M_UNKNOWN", "the homeserver could not check the access token")
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[key] = (user_id, now + self._ttl)
        return user_id
