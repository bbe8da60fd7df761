"""What the notices ask the homeserver, as the appservice on behalf of the firm's people.

Who is in a room (to know whom a message may be waiting for), a person's notifications (what
they have not read, by the homeserver's own push rules and read receipts) and their unread
counts. Only ids, times and counts are read from the answers; the events in them are ciphertext
the bridge has no key for.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from ..homeserver import AppService
from .decide import Notification, parse_notifications


def counts_filter(now: float) -> str:
    """The least a sync needs to carry the unread counts: no timeline to speak of, no state, no
    presence, no account data, no receipts or typing.

    Synapse keeps each /sync answer two minutes (`sync_response_cache_duration`), keyed by the
    request, the filter's text included: asked the same again, it answers from that cache, with
    counts up to two minutes old (someone who has read everything still shown a count). So the
    filter names the current second (as an event type kept out of presence, which takes none
    anyway): requests within one second share an answer, later ones are computed afresh."""
    return json.dumps(
        {
            "presence": {"types": [], "not_types": [f"org.firm.counts.{int(now)}"]},
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


class NoticeHomeserver:
    """The calls of the notices, on the bridge's homeserver client (bridge/homeserver): every
    failure a HomeserverError, a 403 or 404 meaning the homeserver will not say."""

    def __init__(self, appservice: AppService, timeout: float = 30) -> None:
        self.client = appservice.client
        self.timeout = timeout

    async def _get(self, path: str, as_user: str, **query: str) -> Any:
        return await self.client.request(
            "GET", path, query=query, as_user=as_user, timeout=self.timeout
        )

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
            filter=counts_filter(time.time()),
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
