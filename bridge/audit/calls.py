"""Call records: when a call's notices (bridge/core/calls.py) show it has ended, one `call`
record with its start, answer, end, duration, participants and the people invited who never
joined. Metadata only, like every record: no signalling (it is encrypted), no address.

Each notice is itself an event record whose `detail` holds the notice's metadata (records.py);
the call record is computed from those, inside the same DB transaction as the notice that ends
the call, so a replayed transaction or a gap fill adds it once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core.calls import CALL_NOTICE, summarize
from .records import _compact, now_ms

KIND = "call"


def _matches(detail: Any, call_id: str) -> dict | None:
    try:
        data = json.loads(detail) if isinstance(detail, str) else None
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("call_id") == call_id else None


async def _rows(conn: Any, room_id: str, call_id: str, kind: str, event_type: str | None) -> list:
    # The id is in the JSON text; LIKE narrows (its wildcards in an id only widen it) and the
    # parsed detail decides.
    like = f'%"call_id":{json.dumps(call_id, ensure_ascii=False)}%'
    typed = "event_type = $3" if event_type is not None else "event_type IS NULL"
    args: list[Any] = [room_id, like]
    if event_type is not None:
        args.append(event_type)
    found = []
    for table, order in (("audit_record", "seq"), ("audit_pending", "id")):
        found += await conn.fetch(
            f"SELECT ts, sender, detail, {order} AS o FROM {table}"
            f" WHERE room_id = $1 AND kind = '{kind}' AND {typed} AND detail LIKE $2"
            f" ORDER BY ts, {order}",
            *args,
        )
    return [r for r in found if _matches(r["detail"], call_id) is not None]


async def call_records(conn: Any, rows: Sequence[dict]) -> list[dict]:
    """The call records that the notice rows just queued complete (at most one per call)."""
    done: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        if row.get("event_type") != CALL_NOTICE or not row.get("detail"):
            continue
        detail = json.loads(row["detail"])
        if detail.get("action") != "leave":
            continue
        key = (row["room_id"], detail["call_id"])
        if key in done:
            continue
        done.add(key)
        if await _rows(conn, key[0], key[1], KIND, None):
            continue  # recorded already (a later leave of a call that had ended)
        notices = await _rows(conn, key[0], key[1], "event", CALL_NOTICE)
        summary = summarize(
            (r["ts"], r["sender"], json.loads(r["detail"]))
            for r in sorted(notices, key=lambda r: (r["ts"], r["o"]))
        )
        if summary is None:
            continue
        first = notices[0]
        data = summary.detail()
        out.append(
            {
                "kind": KIND,
                "event_id": None,
                "room_id": key[0],
                "sender": first["sender"],  # who started it: the caller
                "device_id": None,
                "event_type": None,
                "state_key": None,
                "ts": data["ended"],
                "size": None,
                "source": "bridge",
                "actor": None,
                "detail": _compact(data),
                "recorded_at": now_ms(),
            }
        )
    return out
