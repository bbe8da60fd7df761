"""What identifies an event's bytes: SHA-256 of its canonical JSON without `unsigned`. Pure.

Only the keys of the specification's client event are hashed (HASHED_KEYS): `unsigned` (age,
transaction id, bundled relations, redacted_because) changes with who asks and when, and so do the
copies of parts of it that homeservers still put at the top level for old clients (`age`,
`user_id`, `prev_content`, `invite_room_state`, ...). What is hashed is what the homeserver stored
and the sender's device wrote. Canonical JSON as in the Matrix specification: keys sorted, no
insignificant whitespace, UTF-8.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .redaction import redact

_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def canonical_json(value: Any) -> bytes:
    return _encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A client event's own keys (`redacts`: redactions, at the top level before room v11 and copied
# there since).
HASHED_KEYS = (
    "content",
    "event_id",
    "origin_server_ts",
    "redacts",
    "room_id",
    "sender",
    "state_key",
    "type",
)


def hashed_part(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in HASHED_KEYS if k in event}


def event_hash(event: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(hashed_part(event)))


def redacted_hash(event: Mapping[str, Any], room_version: str | None) -> str | None:
    """The hash the event will have once redacted (None if the room version is needed and
    unknown)."""
    pruned = redact(event, room_version)
    return None if pruned is None else event_hash(pruned)


def redacts_of(event: Mapping[str, Any]) -> str | None:
    """The event a redaction removes (top level before room v11, in content since)."""
    if event.get("type") != "m.room.redaction":
        return None
    target = event.get("redacts")
    content = event.get("content")
    if not isinstance(target, str) and isinstance(content, dict):
        target = content.get("redacts")
    return target if isinstance(target, str) else None


def is_served_redacted(event: Mapping[str, Any]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and isinstance(unsigned.get("redacted_because"), dict)
