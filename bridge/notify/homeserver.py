"""What the notices ask the homeserver, as the appservice on behalf of the firm's people.

Who is in a room (to know whom a message may be waiting for), a person's notifications (what
they have not read, by the homeserver's own push rules and read receipts) and their unread
counts. Only ids, times and counts are read from the answers; the events in them are ciphertext
the bridge has no key for.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout

from .decide import Notification, parse_notifications

log = logging.getLogger("bridge.notify.hs")

# The least a sync needs to carry the unread counts: no timeline to speak of, no state, no
# presence, no account data, no receipts or typing.
COUNTS_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 1, "types": ["m.room.encrypted"]},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    },
    separators=(",", ":"),
)


class HomeserverUnavailable(Exception):
    """The homeserver did not answer, or answered with an error: ask again later."""


class HomeserverRefused(Exception):
    """The homeserver refused (403/404): asking again the same way will not help."""


class NoticeHomeserver:
    def __init__(self, base_url: str, as_token: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = as_token
        self._session = ClientSession(timeout=ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def _get(self, path: str, as_user: str, **query: str) -> Any:
        params = {"user_id": as_user, **query}
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.get(
                self.base_url + path, params=params, headers=headers
            ) as resp:
                if resp.status in (403, 404):
                    raise HomeserverRefused(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise HomeserverUnavailable(f"HTTP {resp.status}")
                return await resp.json(content_type=None)
        except (ClientError, TimeoutError, ValueError) as e:
            raise HomeserverUnavailable(type(e).__name__) from None

    async def joined_members(self, room_id: str, as_user: str) -> set[str]:
        data = await self._get(
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members", as_user
        )
        joined = data.get("joined") if isinstance(data, dict) else None
        return {u for u in joined if isinstance(u, str)} if isinstance(joined, dict) else set()

    async def notifications(
        self, user_id: str, not_before_ms: int, max_pages: int = 10
    ) -> list[Notification]:
        """The person's notifications, newest first, back to `not_before_ms` (or as far as
        `max_pages` pages of 100 go)."""
        out: list[Notification] = []
        token: str | None = None
        for _ in range(max_pages):
            query = {"limit": "100"}
            if token:
                query["from"] = token
            page, token = parse_notifications(
                await self._get("/_matrix/client/v3/notifications", user_id, **query)
            )
            out.extend(page)
            if not token or not page or min(n.ts for n in page) <= not_before_ms:
                break
        return out

    async def unread_counts(self, user_id: str) -> tuple[int, int, int]:
        """(notifications unread, rooms with any, highlights): the homeserver's own counts,
        as a client's badge shows them. `set_presence=offline`: asking is not being online."""
        data = await self._get(
            "/_matrix/client/v3/sync",
            user_id,
            timeout="0",
            set_presence="offline",
            filter=COUNTS_FILTER,
        )
        rooms = data.get("rooms", {}).get("join", {}) if isinstance(data, dict) else {}
        total = rooms_with = highlights = 0
        for room in rooms.values() if isinstance(rooms, dict) else []:
            counts = room.get("unread_notifications") if isinstance(room, dict) else None
            if not isinstance(counts, dict):
                continue
            n, h = counts.get("notification_count"), counts.get("highlight_count")
            if isinstance(n, int) and n > 0:
                total += n
                rooms_with += 1
            if isinstance(h, int) and h > 0:
                highlights += h
        return total, rooms_with, highlights
