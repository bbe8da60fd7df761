"""Retention schedules and legal hold: what may be deleted, and why. Pure: no I/O.

Per matter (values from WordPress; each one absent falls back to the configured default; a
missing value means "keep"):

- open_days: while the matter is open, a message older than this is deleted.
- closed_days: once the matter is closed, everything left is kept this long after the closing
  date, then deleted (the file is kept whole for the post-closing period, whatever its age).
- media_days: an attachment older than this is deleted; an attachment also goes when the
  messages of its time go, so no file outlives the conversation it was sent in.
- legal_hold: nothing of the matter is deleted, whatever the schedule says.

Days may be fractional (an hour is 1/24).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

DAY_MS = 86_400_000


def iso(ms: int | float) -> str:
    return (
        datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def _days(d: float) -> str:
    return f"{d:g} day{'s' if d != 1 else ''}"


@attrs.define(frozen=True)
class Schedule:
    open_days: float | None
    closed_days: float | None
    media_days: float | None
    legal_hold: bool
    closed: bool
    closed_at: int | None  # ms; when it was closed (None if the bridge does not know)
    own: frozenset[str] = frozenset()  # which of the three values the matter set itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_days": self.open_days,
            "closed_days": self.closed_days,
            "media_days": self.media_days,
            "legal_hold": self.legal_hold,
            "closed": self.closed,
            "closed_at": self.closed_at,
            "from_matter": sorted(self.own),
        }


def resolve(
    matter: Mapping[str, Any] | None,
    defaults: Mapping[str, float | None],
    closed: bool,
    closed_at: int | None,
) -> Schedule:
    """A matter's schedule: its own values where WordPress sent them, defaults elsewhere."""
    matter = matter or {}
    values: dict[str, float | None] = {}
    own = set()
    for key in ("open_days", "closed_days", "media_days"):
        if matter.get(key) is not None:
            values[key] = float(matter[key])
            own.add(key)
        else:
            d = defaults.get(key)
            values[key] = None if d is None else float(d)
    return Schedule(
        values["open_days"],
        values["closed_days"],
        values["media_days"],
        bool(matter.get("legal_hold") or False),
        closed,
        closed_at,
        frozenset(own),
    )


@attrs.define(frozen=True)
class Decision:
    cutoff: int | None  # messages strictly older than this go; None: nothing goes
    reason: str


def _unheld(s: Schedule, now: int) -> Decision:
    if s.closed:
        if s.closed_at is None:
            return Decision(None, "matter closed on a date the bridge does not know; kept")
        if s.closed_days is None:
            return Decision(None, f"matter closed {iso(s.closed_at)}; kept indefinitely")
        end = s.closed_at + s.closed_days * DAY_MS
        if now < end:
            return Decision(
                None,
                f"matter closed {iso(s.closed_at)}; kept {_days(s.closed_days)} after closing,"
                f" until {iso(end)}",
            )
        return Decision(
            now,
            f"matter closed {iso(s.closed_at)}; its {_days(s.closed_days)} after closing ended"
            f" {iso(end)}",
        )
    if s.open_days is None:
        return Decision(None, "matter open; messages kept while it is open")
    return Decision(
        int(now - s.open_days * DAY_MS),
        f"older than {_days(s.open_days)} while the matter is open",
    )


def message_cutoff(s: Schedule, now: int) -> Decision:
    """Up to when the matter's messages are expired, as of `now` (ms)."""
    d = _unheld(s, now)
    if s.legal_hold:
        return Decision(None, "legal hold: nothing is deleted")
    return d


def held_cutoff(s: Schedule, now: int) -> int | None:
    """The cutoff the schedule would apply without the legal hold (to report what it keeps)."""
    return _unheld(s, now).cutoff if s.legal_hold else None


def media_expiry(s: Schedule, created: int, now: int) -> Decision:
    """Whether an attachment of this matter, uploaded at `created`, is expired (cutoff = now)."""
    if s.legal_hold:
        return Decision(None, "legal hold: nothing is deleted")
    messages = _unheld(s, now)
    if messages.cutoff is not None and created < messages.cutoff:
        return Decision(now, f"attachment goes with its messages: {messages.reason}")
    if s.media_days is not None and created < now - s.media_days * DAY_MS:
        return Decision(now, f"attachment older than {_days(s.media_days)}")
    return Decision(None, "within the schedule")


def media_decision(
    candidates: Sequence[tuple[int, Schedule | None]], created: int, now: int
) -> Decision:
    """An attachment that may belong to any of `candidates` (matter id, schedule; None for a
    room that is not a matter's) goes only if it would go under every one of them."""
    if not candidates:
        return Decision(None, "not linked to any matter room: kept")
    reasons = []
    for matter_id, schedule in candidates:
        if schedule is None:
            return Decision(None, "posted in a room that is not a matter's: kept")
        d = media_expiry(schedule, created, now)
        if d.cutoff is None:
            if len(candidates) > 1:
                return Decision(None, f"may belong to matter {matter_id}: {d.reason}")
            return Decision(None, d.reason)
        reasons.append(f"matter {matter_id}: {d.reason}")
    return Decision(now, "; ".join(reasons))
