"""The Matrix redaction algorithm, on events in the client format. Pure: no I/O.

A redacted event is served with its content pruned to the keys the room version keeps (spec,
"Redactions"). The audit hashes that pruned form when the event arrives, so a message deleted
later can still be matched against the chain from what the homeserver serves afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Top-level keys of a client-format event that survive redaction (unsigned is never hashed).
_TOP = ("event_id", "type", "room_id", "sender", "state_key", "content", "origin_server_ts")


def _version(room_version: str | None) -> int | None:
    if room_version is None:
        return None
    return int(room_version) if room_version.isdigit() and 1 <= int(room_version) <= 12 else None


def supported(room_version: str | None) -> bool:
    return _version(room_version) is not None


def version_independent(event: Mapping[str, Any]) -> bool:
    """True when redaction prunes this event the same way in every room version (message-like
    events other than redactions: their content goes entirely)."""
    return "state_key" not in event and event.get("type") != "m.room.redaction"


def _keep_content(event_type: Any, content: Mapping[str, Any], v: int) -> dict[str, Any]:
    keys: tuple[str, ...] = ()
    if event_type == "m.room.member":
        keys = ("membership",)
        if v >= 9:
            keys += ("join_authorised_via_users_server",)
        kept = {k: content[k] for k in keys if k in content}
        invite = content.get("third_party_invite")
        if v >= 11 and isinstance(invite, dict) and "signed" in invite:
            kept["third_party_invite"] = {"signed": invite["signed"]}
        return kept
    if event_type == "m.room.create":
        if v >= 11:
            return dict(content)
        keys = ("creator",)
    elif event_type == "m.room.join_rules":
        keys = ("join_rule", "allow") if v >= 8 else ("join_rule",)
    elif event_type == "m.room.power_levels":
        keys = (
            "ban",
            "events",
            "events_default",
            "kick",
            "redact",
            "state_default",
            "users",
            "users_default",
        )
        if v >= 11:
            keys += ("invite",)
    elif event_type == "m.room.history_visibility":
        keys = ("history_visibility",)
    elif event_type == "m.room.aliases" and v <= 5:
        keys = ("aliases",)
    elif event_type == "m.room.redaction" and v >= 11:
        keys = ("redacts",)
    return {k: content[k] for k in keys if k in content}


def redact(event: Mapping[str, Any], room_version: str | None) -> dict[str, Any] | None:
    """The event as a homeserver serves it once redacted (without `unsigned`), or None when the
    room version is unknown and the result depends on it."""
    v = _version(room_version)
    if v is None:
        if not version_independent(event):
            return None
        v = 12  # any version: the content goes entirely
    pruned = {k: event[k] for k in _TOP if k in event}
    content = event.get("content")
    pruned["content"] = _keep_content(
        event.get("type"), content if isinstance(content, dict) else {}, v
    )
    if v >= 11 and event.get("type") == "m.room.redaction" and "redacts" in pruned["content"]:
        # Homeservers copy content.redacts to the top level for older clients (room v11+).
        pruned["redacts"] = pruned["content"]["redacts"]
    return pruned
