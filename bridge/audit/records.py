"""What an event becomes in the audit trail. Pure: no I/O.

Metadata only: sender, sending device, room, event type, state key, server timestamp and size.
Never content and never keys: nothing from `content` is kept except, for `m.room.encrypted`, the
sending device id (which the Megolm envelope carries in the clear), and the metadata of a call
notice (`org.firm.call`, sent in the clear for this: bridge/core/calls.py). Media addresses in
*unencrypted* events are returned separately, for the retention index, never chained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ..core.calls import notice_detail
from ..core.constants import MATTER_KEY
from .chain import FIELDS, OPTIONAL_FIELDS
from .eventhash import event_hash, redacted_hash, redacts_of

_compact = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_size = json.JSONEncoder(separators=(",", ":")).encode
MAX_ID = 512  # longer ids than any homeserver issues are cut, never stored whole


def now_ms() -> int:
    return int(time.time() * 1000)


def event_size(event: Mapping[str, Any]) -> int:
    """Length of the event's compact JSON (ASCII, non-ASCII characters escaped), `unsigned` left
    out.

    `unsigned` (age, transaction ids) differs between deliveries of the same event, so leaving it
    out gives one size whether the event came in a transaction or from a timeline gap fill. Key
    order does not change the length, so no copy or sort is needed.
    """
    size = len(_size(event))
    if "unsigned" in event:
        # ,"unsigned":{...}  (or {"unsigned":{...}} alone)
        size -= len(_size(event["unsigned"])) + len('"unsigned":') + (1 if len(event) > 1 else 0)
    return size


def _str(value: Any) -> str | None:
    return value[:MAX_ID] if isinstance(value, str) else None


def created_for_matter(event: Mapping[str, Any], bridge_user: str | None) -> tuple[str, int] | None:
    """(room, matter) when `event` is the bridge's creation of a matter room.

    The bridge names the matter in the creation content, so the room's first events can be
    attributed before the room is saved with its matter. Only the bridge's own create event is
    believed: anyone may put the key in a room of their own.
    """
    if event.get("type") != "m.room.create" or event.get("state_key") != "":
        return None
    if bridge_user is None or event.get("sender") != bridge_user:
        return None
    content, room_id = event.get("content"), _str(event.get("room_id"))
    matter = content.get(MATTER_KEY) if isinstance(content, dict) else None
    if room_id is None or not isinstance(matter, int) or isinstance(matter, bool):
        return None
    return room_id, matter


def _hashes(event: Mapping[str, Any], room_version: str | None) -> dict[str, str | None]:
    try:
        return {
            "event_hash": event_hash(event),
            "redacted_hash": redacted_hash(event, room_version),
        }
    except (ValueError, TypeError, RecursionError):  # not JSON a homeserver would serve
        return {"event_hash": None, "redacted_hash": None}


def room_version_created(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(room, room version) when `event` is a room's create event."""
    if event.get("type") != "m.room.create" or event.get("state_key") != "":
        return None
    content, room_id = event.get("content"), _str(event.get("room_id"))
    version = content.get("room_version", "1") if isinstance(content, dict) else None
    if room_id is None or not isinstance(version, str) or len(version) > 64:
        return None
    return room_id, version


def event_row(
    event: Mapping[str, Any],
    source: str,
    received_at: int | None = None,
    room_version: str | None = None,
) -> dict | None:
    """The pending audit row for a room event, or None for anything that is not one.

    Besides metadata, the SHA-256 of the event's canonical JSON and of its redacted form (which
    needs the room's version for state events), so a transcript can be matched against the chain;
    hashes of ciphertext and metadata, never content in the clear."""
    event_id = _str(event.get("event_id"))
    room_id = _str(event.get("room_id"))
    sender = _str(event.get("sender"))
    event_type = _str(event.get("type"))
    ts = event.get("origin_server_ts")
    if not (event_id and room_id and sender and event_type):
        return None
    if not isinstance(ts, int) or isinstance(ts, bool):
        return None
    device_id = None
    content = event.get("content")
    if event_type == "m.room.encrypted" and isinstance(content, dict):
        device_id = _str(content.get("device_id"))
    # A call notice's metadata (whom, which call, joined or left: bridge/core/calls.py).
    call = notice_detail(event)
    return {
        "kind": "event",
        "event_id": event_id,
        "room_id": room_id,
        "sender": sender,
        "device_id": device_id,
        "event_type": event_type,
        "state_key": _str(event.get("state_key")),
        "ts": ts,
        "size": event_size(event),
        "source": source,
        "actor": None,
        "detail": _compact(call) if call is not None else None,
        "recorded_at": now_ms() if received_at is None else received_at,
        **_hashes(event, room_version),
        "redacts": _str(redacts_of(event)),
    }


def note_row(kind: str, actor: str, detail: Mapping[str, Any], room_id: str | None = None) -> dict:
    """A record the bridge writes about itself: an audit read, a deletion."""
    ts = now_ms()
    return {
        "kind": kind,
        "event_id": None,
        "room_id": room_id,
        "sender": None,
        "device_id": None,
        "event_type": None,
        "state_key": None,
        "ts": ts,
        "size": None,
        "source": "bridge",
        "actor": actor,
        "detail": _compact(dict(detail)),
        "recorded_at": ts,
    }


def media_ids(event: Mapping[str, Any]) -> Iterator[str]:
    """mxc media ids an *unencrypted* event points at (file, image, sticker, thumbnail)."""
    if event.get("type") not in ("m.room.message", "m.sticker"):
        return
    content = event.get("content")
    if not isinstance(content, dict):
        return
    info = content.get("info")
    if not isinstance(info, dict):
        info = {}
    candidates = [content.get("url"), info.get("thumbnail_url")]
    for holder in (content.get("file"), info.get("thumbnail_file")):
        if isinstance(holder, dict):
            candidates.append(holder.get("url"))
    for url in candidates:
        mid = parse_mxc(url)
        if mid:
            yield mid


def parse_mxc(url: Any) -> str | None:
    """'server/media_id' from mxc://server/media_id, or None."""
    if not isinstance(url, str) or not url.startswith("mxc://"):
        return None
    rest = url[6:]
    server, _, media = rest.partition("/")
    if not server or not media or "/" in media or len(rest) > MAX_ID:
        return None
    return rest


@attrs.define(frozen=True)
class Connection:
    ip: str | None
    user_agent: str | None
    last_seen: int


@attrs.define(frozen=True)
class ClientInfo:
    """What the homeserver knows of a person's clients: whois connections and device addresses."""

    connections: tuple[Connection, ...] = ()
    devices: Mapping[str, Connection] = attrs.field(factory=dict)

    def knows_address_of(self, device_id: str) -> bool:
        dev = self.devices.get(device_id)
        return dev is not None and bool(dev.ip)


def client_address(info: ClientInfo | None, device_id: str | None) -> tuple[str | None, str | None]:
    """The address and user agent to attach to a record.

    The sending device's last address when the event names its device (encrypted events do);
    otherwise the person's most recently seen connection.
    """
    if info is None:
        return None, None
    if device_id is not None:
        dev = info.devices.get(device_id)
        if dev is not None and dev.ip:
            return dev.ip, dev.user_agent
    if not info.connections:
        return None, None
    last = max(info.connections, key=lambda c: c.last_seen)
    return last.ip, last.user_agent


def sealed_record(
    pending: Mapping[str, Any], matter_id: int | None, address: tuple[str | None, str | None]
) -> dict:
    """The chain record for a pending row (all FIELDS present)."""
    record = {k: pending.get(k) for k in (*FIELDS, *OPTIONAL_FIELDS)}
    record["matter_id"] = matter_id
    record["client_ip"], record["user_agent"] = address
    return record
