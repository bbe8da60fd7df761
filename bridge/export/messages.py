"""messages.jsonl: one line per event of the bundle, derived from the events as served, their
decrypted payloads, the people table of the manifest and the attachments found. Pure: no I/O.

The exporter writes these lines and the verifier derives them again from what it decrypted itself
and compares them, so the derivation is part of the format (docs/transcript-format.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..audit.eventhash import is_served_redacted, redacts_of
from .manifest import VERSION

_EXTENSION = re.compile(r"[A-Za-z0-9]{1,8}")
_V1_MAX_NAME = 120


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ts % 1000:03d}Z"
    )


def _relates_to(event: Mapping[str, Any], content: Mapping[str, Any]) -> Mapping[str, Any]:
    # For encrypted events the relation is in the clear part (servers aggregate on it); a payload
    # that carries one too is read only when the clear part has none.
    outer = event.get("content")
    rel = outer.get("m.relates_to") if isinstance(outer, dict) else None
    if not isinstance(rel, dict):
        rel = content.get("m.relates_to")
    return rel if isinstance(rel, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def extension(name: str) -> str:
    """What an attachment's path keeps of its name: the part after the last dot, lowercased,
    when it is 1-8 ASCII letters or digits and something comes before the dot; else nothing."""
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem and _EXTENSION.fullmatch(ext) else ""


def attachment_path(index: int, name: str, version: int = VERSION) -> str:
    """Where the bundle holds an attachment: its position and at most a short extension. The
    name is what the client chose, and the manifest, which lists every path, goes to the
    bridge, so it stays out (it is in messages.jsonl and the page). Version 1 bundles, which
    the verifier still reads, kept the sanitised name."""
    if version == 1:
        cleaned = re.sub(r"[^\w.\- ]+", "_", name, flags=re.UNICODE).strip(" .") or "file"
        return f"attachments/{index:05d}-{cleaned[:_V1_MAX_NAME]}"
    return f"attachments/{index:05d}{extension(name)}"


def encrypted_file(content: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The EncryptedFile of an attachment message, if it is one."""
    file = content.get("file")
    if isinstance(file, dict) and isinstance(file.get("url"), str):
        return file
    return None


def build(
    events: Sequence[Mapping[str, Any]],
    payloads: Mapping[str, Mapping[str, Any] | None],
    people: Mapping[str, Mapping[str, Any]],
    attachments: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The lines of messages.jsonl.

    `payloads`: for each encrypted event, its decrypted payload ({"type", "content", ...}) or None
    when it could not be decrypted; `attachments`: for each attachment event, what was found
    (file, size, sha256, ciphertext_sha256, available).
    """

    def name(user: Any) -> tuple[str | None, str | None]:
        person = people.get(user) if isinstance(user, str) else None
        if not person:
            return None, None
        return _str(person.get("display_name")), _str(person.get("role"))

    lines: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for i, event in enumerate(events):
        event_id = str(event.get("event_id"))
        encrypted = event.get("type") == "m.room.encrypted"
        redacted = is_served_redacted(event)
        undecryptable = False
        if encrypted and not redacted:
            payload = payloads.get(event_id)
            if payload is None:
                undecryptable = True
                etype, content = "m.room.encrypted", {}
            else:
                etype = str(payload.get("type"))
                raw = payload.get("content")
                content = raw if isinstance(raw, dict) else {}
        else:
            etype = str(event.get("type"))
            raw = event.get("content")
            content = raw if isinstance(raw, dict) else {}
        sender_name, sender_role = name(event.get("sender"))
        rel = _relates_to(event, content)
        reply = rel.get("m.in_reply_to")
        reply_to = _str(reply.get("event_id")) if isinstance(reply, dict) else None
        edit_of = _str(rel.get("event_id")) if rel.get("rel_type") == "m.replace" else None
        body_source = content
        if edit_of and isinstance(content.get("m.new_content"), dict):
            body_source = content["m.new_content"]
        deleted = None
        if redacted:
            because = event["unsigned"]["redacted_because"]
            by = _str(because.get("sender"))
            ts = because.get("origin_server_ts")
            reason = (
                because.get("content", {}).get("reason")
                if isinstance(because.get("content"), dict)
                else None
            )
            deleted = {
                "redaction_id": _str(because.get("event_id")),
                "by": by,
                "by_name": name(by)[0],
                "ts": ts if isinstance(ts, int) else None,
                "time": iso(ts) if isinstance(ts, int) else None,
                "reason": _str(reason),
            }
        attachment = None
        file = encrypted_file(content) if etype == "m.room.message" else None
        if file is not None:
            found = attachments.get(event_id, {})
            raw_info = content.get("info")
            info: Mapping[str, Any] = raw_info if isinstance(raw_info, dict) else {}
            label = _str(content.get("filename")) or _str(content.get("body")) or "file"
            attachment = {
                "name": label,
                "mimetype": _str(info.get("mimetype")),
                "size": found.get("size"),
                "file": found.get("file") if found.get("available") else None,
                "sha256": found.get("sha256"),
                "ciphertext_sha256": found.get("ciphertext_sha256"),
                "available": bool(found.get("available")),
            }
        summary = _summary(etype, content, event, undecryptable, deleted is not None)
        line: dict[str, Any] = {
            "seq": i,
            "event_id": event_id,
            "ts": event.get("origin_server_ts"),
            "time": iso(event["origin_server_ts"])
            if isinstance(event.get("origin_server_ts"), int)
            else None,
            "sender": event.get("sender"),
            "sender_name": sender_name,
            "sender_role": sender_role,
            "type": etype,
            "state_key": _str(event.get("state_key")),
            "encrypted": encrypted,
            "undecryptable": undecryptable,
            "msgtype": _str(content.get("msgtype")),
            "body": _str(body_source.get("body")),
            "reply_to": reply_to,
            "edit_of": edit_of,
            "edits": [],
            "deleted": deleted,
            "redacts": redacts_of(event),
            "attachment": attachment,
            "summary": summary,
            "content": content,
        }
        lines.append(line)
        by_id[event_id] = line
    for line in lines:
        original = by_id.get(line["edit_of"]) if line["edit_of"] else None
        # Only the original's sender may edit it (as clients show edits).
        if original is not None and original["sender"] == line["sender"]:
            original["edits"].append(line["event_id"])
    return lines


def _summary(
    etype: str,
    content: Mapping[str, Any],
    event: Mapping[str, Any],
    undecryptable: bool,
    deleted: bool,
) -> str | None:
    """One line for what is not a message body: membership, room changes, reactions."""
    if deleted:
        return "deleted"
    if undecryptable:
        return "could not be decrypted"
    if etype == "m.room.message":
        return None
    if etype == "m.room.member":
        return f"{content.get('membership')}: {event.get('state_key')}"
    if etype == "m.room.redaction":
        return f"deleted {redacts_of(event)}"
    if etype == "m.reaction":
        rel = content.get("m.relates_to")
        if isinstance(rel, dict):
            return f"reacted {rel.get('key')} to {rel.get('event_id')}"
    if "state_key" in event:
        return f"{etype} set"
    return etype
