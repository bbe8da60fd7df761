"""Current room membership, asked of the homeserver with the appservice token.

The firm's people are in the bridge's exclusive user namespace, so the bridge may ask as them
(`?user_id=`) which rooms they are joined to, whatever the room. For anyone outside it (operator
accounts), the bridge reads the room's membership itself, which works in the rooms it is in
(every managed room) and fails closed elsewhere. Never cached: a person removed from a room loses
access to its files at once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from urllib.parse import quote

from ..homeserver import AppService, HomeserverError
from .policy import Refusal

log = logging.getLogger("bridge.media.membership")

# Per person and check: enough for any real room list, bounded for a hostile one.
MAX_ROOM_CHECKS = 50


def _q(value: str) -> str:
    return quote(value, safe="")


class Membership:
    def __init__(self, hs: AppService) -> None:
        self._hs = hs
        self._bot = hs.bot_mxid

    async def _get(
        self, path: str, user_id: str | None, token: str | None = None
    ) -> tuple[int, object]:
        """As `user_id` with the appservice token, or with a person's own `token`."""
        client = self._hs.client if token is None else self._hs.client.authorized(token)
        try:
            return await client.answer("GET", path, as_user=user_id if token is None else None)
        except HomeserverError as e:
            log.warning("Homeserver membership query failed: %s", e.message)
            raise Refusal(502, "M_UNKNOWN", "the homeserver is unreachable") from None

    async def joined_rooms(self, user_id: str) -> set[str] | None:
        """Every room user_id is joined to now, or None if the bridge may not ask as them."""
        status, body = await self._get("/_matrix/client/v3/joined_rooms", user_id)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("joined_rooms"), list):
            return {r for r in body["joined_rooms"] if isinstance(r, str)}
        if status in (401, 403):
            return None
        log.warning("Homeserver answered %s to joined_rooms", status)
        raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell room membership")

    async def own_joined_rooms(self, token: str) -> set[str]:
        """The rooms the token's owner is joined to now, asked with their own token."""
        status, body = await self._get("/_matrix/client/v3/joined_rooms", None, token)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("joined_rooms"), list):
            return {r for r in body["joined_rooms"] if isinstance(r, str)}
        log.warning("Homeserver answered %s to joined_rooms", status)
        raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell room membership")

    async def is_joined(self, room_id: str, user_id: str) -> bool:
        """Whether user_id is joined to room_id now, as the bridge sees it (False if it cannot)."""
        status, body = await self._get(
            f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.member/{_q(user_id)}", self._bot
        )
        if status == 200:
            return isinstance(body, dict) and body.get("membership") == "join"
        if status in (403, 404):
            return False
        log.warning("Homeserver answered %s to a membership read", status)
        raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell room membership")


class MembershipView:
    """One request's view: each person's joined rooms asked at most once."""

    def __init__(self, membership: Membership) -> None:
        self._m = membership
        self._joined: dict[str, set[str] | None] = {}

    async def rooms_among(self, user_id: str, candidates: Collection[str]) -> set[str]:
        """Which of candidates user_id is joined to now."""
        if not candidates:
            return set()
        if user_id not in self._joined:
            self._joined[user_id] = await self._m.joined_rooms(user_id)
        joined = self._joined[user_id]
        if joined is not None:
            return joined.intersection(candidates)
        return {
            room
            for room in sorted(candidates)[:MAX_ROOM_CHECKS]
            if await self._m.is_joined(room, user_id)
        }
