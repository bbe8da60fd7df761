"""transcript.eml: the conversation in Relativity Short Message Format 1.0 (an RFC 5322 message
whose attachment rsmf.zip holds rsmf_manifest.json and the attachments), so e-discovery platforms
can load it. Deterministic: the same messages give the same bytes. Pure."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

RSMF_VERSION = "1.0.0"


def manifest(bundle: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    people = bundle.get("people") or {}
    room_id = (bundle.get("room") or {}).get("room_id")
    matter = bundle.get("matter") or {}
    senders = sorted({str(line["sender"]) for line in lines if line.get("sender")})
    participants = [
        {"id": s, "display": (people.get(s) or {}).get("display_name") or s} for s in senders
    ]
    events = []
    for line in lines:
        if line.get("type") != "m.room.message" and not line.get("deleted"):
            continue
        if line.get("edit_of"):
            continue  # shown as the original's edits
        event: dict[str, Any] = {
            "id": line["event_id"],
            "type": "message",
            "conversation": room_id,
            "participant": line.get("sender"),
            "timestamp": line.get("time"),
            "body": line.get("body") or "",
        }
        if line.get("reply_to"):
            event["parent"] = line["reply_to"]
        if line.get("deleted"):
            event["deleted"] = True
        if line.get("edits"):
            event["edited"] = True
        att = line.get("attachment")
        if att and att.get("available"):
            event["attachments"] = [
                {
                    "id": att["file"].split("/", 1)[1],
                    "display": att.get("name"),
                    "size": att.get("size"),
                }
            ]
        events.append(event)
    return {
        "version": RSMF_VERSION,
        "participants": participants,
        "conversations": [
            {
                "id": room_id,
                "platform": "Matrix",
                "type": "channel",
                "display": f"Matter {matter.get('number')}: {matter.get('title')}",
                "participants": senders,
            }
        ],
        "events": events,
    }


def render(
    bundle: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    files: Mapping[str, bytes],
) -> bytes:
    """The .eml; `files`: attachment path in the bundle -> plaintext."""
    rsmf = manifest(bundle, lines)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("rsmf_manifest.json", json.dumps(rsmf, indent=1).encode())] + sorted(
            (path.split("/", 1)[1], data) for path, data in files.items()
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    times = [line["ts"] for line in lines if isinstance(line.get("ts"), int)]
    msg = EmailMessage()
    matter = bundle.get("matter") or {}
    msg["Subject"] = f"Matter {matter.get('number')}: {matter.get('title')} (transcript)"
    msg["From"] = str((bundle.get("exporter") or {}).get("user_id"))
    msg["Date"] = format_datetime(datetime.fromtimestamp(bundle["exported_at"] / 1000, UTC))
    msg["X-RSMF-Version"] = RSMF_VERSION
    msg["X-RSMF-Generator"] = "firm-bridge transcript export"
    msg["X-RSMF-EventCount"] = str(len(rsmf["events"]))
    if times:
        msg["X-RSMF-BeginDate"] = datetime.fromtimestamp(min(times) / 1000, UTC).isoformat()
        msg["X-RSMF-EndDate"] = datetime.fromtimestamp(max(times) / 1000, UTC).isoformat()
    msg.set_content(
        "\n".join(f"{e['timestamp']} {e['participant']}: {e['body']}" for e in rsmf["events"])
    )
    msg.add_attachment(zbuf.getvalue(), maintype="application", subtype="zip", filename="rsmf.zip")
    # A boundary from the content (not random): the same transcript gives the same bytes.
    msg.set_boundary("=_rsmf_" + hashlib.sha256(zbuf.getvalue()).hexdigest()[:32])
    return bytes(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
