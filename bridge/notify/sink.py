"""What the notices need from each appservice transaction: where messages were sent.

Runs inside the transaction's DB transaction (an EventSink), so a message's activity commits
with the transaction id: recorded exactly once, or the homeserver sends it again. One row per
room and sender, however many messages; `hits` tells the worker that more came after it read
the row. Nothing is read from an event's content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Events that may be a message for someone (the homeserver's push rules decide at the check:
# an edit or a notice a person muted gives no notification, and so no e-mail).
MESSAGE_TYPES = frozenset({"m.room.encrypted", "m.room.message", "m.sticker"})


class ActivitySink:
    def __init__(self, bot_mxid: str, on_membership: Callable[[str], None]) -> None:
        self.bot_mxid = bot_mxid
        self._on_membership = on_membership
        self.wake: Callable[[], None] = lambda: None

    async def on_events(self, conn: Any, events: list[dict]) -> None:
        seen: dict[tuple[str, str], tuple[int, int]] = {}
        for event in events:
            room_id, sender, kind = event.get("room_id"), event.get("sender"), event.get("type")
            if not isinstance(room_id, str) or not isinstance(sender, str):
                continue
            if kind == "m.room.member":
                self._on_membership(room_id)
                continue
            if kind not in MESSAGE_TYPES or "state_key" in event or sender == self.bot_mxid:
                continue
            ts = event.get("origin_server_ts")
            if not isinstance(ts, int) or isinstance(ts, bool):
                continue
            first, hits = seen.get((room_id, sender), (ts, 0))
            seen[(room_id, sender)] = (min(first, ts), hits + 1)
        for (room_id, sender), (first, hits) in seen.items():
            await conn.execute(
                "INSERT INTO notify_activity (room_id, sender, first_ts, hits)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (room_id, sender)"
                " DO UPDATE SET hits = notify_activity.hits + excluded.hits",
                room_id,
                sender,
                first,
                hits,
            )
        if seen:
            self.wake()
