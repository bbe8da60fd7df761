"""The media index: which rooms each file was posted in, from the events the homeserver sends.

An EventSink (bridge.appservice): called inside the transaction's DB transaction, so a posting is
recorded exactly once. Only cleartext events can be indexed; m.room.encrypted hides its
attachments from the bridge by design, and encrypted media is governed by its uploader instead
(see policy.py). A redaction removes its event's postings: a file whose message was redacted is
no longer shared through it.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, TypeGuard

from . import store

log = logging.getLogger("bridge.media.index")

MXC = re.compile(
    r"^mxc://([A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?)/([A-Za-z0-9_\-]+)$"
)
_MAX_DEPTH = 8
_MAX_PER_EVENT = 50


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= 255


def parse_mxc(uri: str) -> tuple[str, str] | None:
    m = MXC.match(uri)
    return (m.group(1), m.group(2)) if m else None


def mxc_uris(content: Any) -> list[tuple[str, str]]:
    """(server name, media id) of every mxc:// URI anywhere in an event's content.

    Walks the whole content rather than known keys (url, info.thumbnail_url, avatar_url,
    m.new_content, ...): a file a client refers to under a key nobody listed is still indexed.
    """
    found: list[tuple[str, str]] = []

    def walk(node: Any, depth: int) -> None:
        if len(found) >= _MAX_PER_EVENT or depth > _MAX_DEPTH:
            return
        if isinstance(node, str):
            if node.startswith("mxc://") and (parsed := parse_mxc(node)) and parsed not in found:
                found.append(parsed)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(content, 0)
    return found


class MediaIndex:
    """Records postings of media from appservice transactions."""

    async def on_events(self, conn: Any, events: list[dict]) -> None:
        for event in events:
            room_id, event_id, sender = (event.get(k) for k in ("room_id", "event_id", "sender"))
            if not (_is_id(room_id) and _is_id(event_id) and _is_id(sender)):
                continue
            content = event.get("content")
            if event.get("type") == "m.room.redaction":
                redacts = event.get("redacts")
                if not isinstance(redacts, str) and isinstance(content, dict):
                    redacts = content.get("redacts")  # room versions 11 and later
                if isinstance(redacts, str):
                    await store.forget_event(conn, redacts, room_id, sender)
                continue
            if event.get("type") == "m.room.encrypted" or not isinstance(content, dict):
                continue
            ts = event.get("origin_server_ts")
            posted_at = (
                ts / 1000 if isinstance(ts, int) and not isinstance(ts, bool) else time.time()
            )
            for server_name, media_id in mxc_uris(content):
                await store.add_posting(
                    conn,
                    server_name,
                    media_id,
                    event_id=event_id,
                    room_id=room_id,
                    sender=sender,
                    posted_at=posted_at,
                )
                log.debug("mxc://%s/%s posted in %s by %s", server_name, media_id, room_id, sender)
