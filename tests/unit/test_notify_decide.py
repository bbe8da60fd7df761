"""The notice rules (bridge/notify/decide.py): pure, no server."""

from __future__ import annotations

import json

import pytest

from bridge.config import NOTIFY_MAX_DELAY, _notify_delay
from bridge.notify.decide import (
    MAX_DELAY_SECONDS,
    Close,
    Later,
    Notification,
    Notify,
    decide,
    parse_notifications,
)
from bridge.notify.homeserver import counts_filter
from bridge.notify.routes import parse_prefs
from bridge.web.errors import ApiError

DELAY = 600_000


def n(room: str, ts: int, read: bool = False) -> Notification:
    return Notification(room_id=room, ts=ts, read=read)


def test_unread_past_the_delay_is_one_notice_for_all() -> None:
    now = 10_000_000
    got = decide([n("!a", now - DELAY), n("!a", now - 5), n("!b", now - 1)], now, DELAY, 0)
    assert got == Notify(rooms=("!a", "!b"), unread=3, oldest_ts=now - DELAY)


def test_unread_not_yet_due_moves_the_check() -> None:
    now = 10_000_000
    assert decide([n("!a", now - 1000)], now, DELAY, 0) == Later(at_ms=now - 1000 + DELAY)


def test_read_or_covered_closes_the_window() -> None:
    now = 10_000_000
    assert decide([n("!a", now - DELAY, read=True)], now, DELAY, 0) == Close()
    assert decide([], now, DELAY, 0) == Close()
    # Covered by the last notice: not noticed again, however old.
    assert decide([n("!a", now - 2 * DELAY)], now, DELAY, now - DELAY) == Close()
    # Something newer than the last notice is a window of its own.
    assert decide([n("!a", now - 2 * DELAY), n("!a", now - 10)], now, DELAY, now - DELAY) == Later(
        at_ms=now - 10 + DELAY
    )


def test_parse_keeps_messages_only() -> None:
    page = {
        "notifications": [
            {"room_id": "!a", "ts": 5, "read": False, "event": {"type": "m.room.encrypted"}},
            {"room_id": "!a", "ts": 4, "read": True, "event": {"type": "m.room.encrypted"}},
            # An invitation is a notification, not a message waiting.
            {
                "room_id": "!b",
                "ts": 3,
                "read": False,
                "event": {"type": "m.room.member", "state_key": "@x:f"},
            },
            {"room_id": "!c", "ts": "6", "read": False, "event": {}},
            "junk",
        ],
        "next_token": "17",
    }
    notes, next_page = parse_notifications(page)
    assert notes == [n("!a", 5), n("!a", 4, read=True)] and next_page == "17"
    assert parse_notifications({"notifications": []}) == ([], None)
    assert parse_notifications("x") == ([], None)


def test_delay_setting_and_preferences_are_checked() -> None:
    assert NOTIFY_MAX_DELAY == MAX_DELAY_SECONDS
    assert _notify_delay(600) is None and _notify_delay(0.5) is None
    for bad in (0, -1, True, "600", MAX_DELAY_SECONDS + 1):
        assert _notify_delay(bad) is not None
    assert parse_prefs({"email": False, "delay_seconds": None}) == (False, None)
    assert parse_prefs({"email": True, "delay_seconds": 900}) == (True, 900)
    for body, field in (
        ([], "body"),
        ({"email": "yes"}, "email"),
        ({"email": True, "delay_seconds": 0}, "delay_seconds"),
        ({"email": True, "delay_seconds": MAX_DELAY_SECONDS + 1}, "delay_seconds"),
        ({"email": True, "delay_seconds": 1.5}, "delay_seconds"),
        ({"email": True, "other": 1}, "other"),
    ):
        with pytest.raises(ApiError) as e:
            parse_prefs(body)
        assert e.value.status == 400 and e.value.field == field


def test_the_counts_sync_is_not_answered_from_synapses_cache() -> None:
    """Synapse answers a /sync it was asked within two minutes from its cache, keyed by the
    filter's text: the unread counts' filter changes every second (and only then)."""
    assert counts_filter(1000.2) == counts_filter(1000.9)
    assert counts_filter(1000.9) != counts_filter(1001.0)
    data = json.loads(counts_filter(1000.0))
    assert data["presence"]["types"] == [] and data["room"]["timeline"]["limit"] == 1
