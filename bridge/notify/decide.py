"""When a person gets a notice: the pure rules, no I/O (the worker asks the homeserver first).

A window opens with the first message that may be waiting for a person. When its delay has
passed, the homeserver's notifications for that person say what is still unread. A notice goes
out when something unread, and not covered by an earlier notice, has waited the whole delay; it
covers everything unread at that moment, so five messages in a window give one notice. Something
unread that has not waited long enough moves the check to when it will have. Nothing unread
closes the window: the person read in time, in the portal or in any Matrix client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

# Delays a person may choose (WordPress offers fewer). The homeserver keeps its per-event
# notifications for about a day after summarising them, so a check must come well before.
MAX_DELAY_SECONDS = 12 * 3600


@attrs.define(frozen=True)
class Notification:
    """One of the homeserver's notifications for a person (GET /notifications)."""

    room_id: str
    ts: int  # when the homeserver received the event, ms
    read: bool


@attrs.define(frozen=True)
class Notify:
    rooms: tuple[str, ...]  # rooms with something unread (for the matters a notice may name)
    unread: int
    oldest_ts: int


@attrs.define(frozen=True)
class Later:
    at_ms: int


@attrs.define(frozen=True)
class Close:
    pass


Decision = Notify | Later | Close


def decide(
    notifications: Iterable[Notification], now_ms: int, delay_ms: int, covered_until_ms: int
) -> Decision:
    """What to do for a person whose window is due, given their notifications."""
    unread = [n for n in notifications if not n.read and n.ts > covered_until_ms]
    if not unread:
        return Close()
    oldest = min(n.ts for n in unread)
    if oldest + delay_ms <= now_ms:
        return Notify(
            rooms=tuple(sorted({n.room_id for n in unread})), unread=len(unread), oldest_ts=oldest
        )
    return Later(at_ms=oldest + delay_ms)


def parse_notifications(page: Any) -> tuple[list[Notification], str | None]:
    """The messages among one page of GET /notifications, and the next page's token. Of each
    event only whether it is state is looked at (its content is ciphertext the bridge cannot,
    and does not, read)."""
    out: list[Notification] = []
    items = page.get("notifications") if isinstance(page, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        event = item.get("event")
        if not isinstance(event, dict) or "state_key" in event:
            continue  # an invitation or other state: not a message waiting to be read
        room_id, ts = item.get("room_id"), item.get("ts")
        if isinstance(room_id, str) and isinstance(ts, int) and not isinstance(ts, bool):
            out.append(Notification(room_id=room_id, ts=ts, read=item.get("read") is True))
    token = page.get("next_token") if isinstance(page, dict) else None
    return out, token if isinstance(token, str) and token else None


def check_backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds before asking again after `attempts` failures in a row (doubling, bounded)."""
    return float(min(maximum, initial * 2 ** max(0, min(attempts - 1, 30))))
