"""Queries of the audit trail by matter, person and date range; CSV and JSON export.

Parsing is pure; `fetch` reads one page on a connection the caller holds, and the caller records
the read in the chain in the same DB transaction (who, when, which query, how many records).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .retention import iso
from .store import RECORD_COLS

KINDS = (
    "event",
    "audit_read",
    "audit_verify",
    "audit_head",
    "retention_purge",
    "retention_media",
    "conversation_removal",
    "transcript_export",
    "transcript_refused",
    "call",
)
EXPORT_COLS = (
    "seq",
    "time",
    "kind",
    "matter_id",
    "room_id",
    "event_id",
    "event_type",
    "state_key",
    "sender",
    "device_id",
    "client_ip",
    "user_agent",
    "size",
    "ts",
    "source",
    "actor",
    "detail",
    "recorded_at",
    "event_hash",
    "redacted_hash",
    "redacts",
    "prev_hash",
    "hash",
)
MAX_LIMIT = 10000
# What makes a spreadsheet read a cell as a formula (OWASP's list; a line feed for good measure).
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")
_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")


class BadQuery(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_time(text: str, field: str, end: bool = False) -> int:
    """Milliseconds since the epoch from an integer (ms), a date or an ISO 8601 date-time.

    A bare date as an upper bound means the end of that day (the range includes it)."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,15}", text):
        return int(text)
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            day = datetime.date.fromisoformat(text)
            if end:
                day += datetime.timedelta(days=1)
            dt = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
        else:
            dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=datetime.UTC)
    except ValueError:
        raise BadQuery(
            field, "must be a date (2024-05-01), an ISO 8601 time or milliseconds"
        ) from None
    return int(dt.timestamp() * 1000)


@attrs.define(frozen=True)
class AuditQuery:
    matter: int | None = None
    person: str | int | None = None  # a Matrix id, or a WordPress person id
    since: int | None = None  # ms, inclusive
    until: int | None = None  # ms, exclusive
    kinds: tuple[str, ...] = ("event",)
    after: int = 0  # seq cursor for paging
    limit: int = 1000

    def describe(self) -> dict[str, Any]:
        """The query as recorded in the chain."""
        return {
            "matter": self.matter,
            "person": self.person,
            "since": self.since,
            "until": self.until,
            "kinds": list(self.kinds),
            "after": self.after,
            "limit": self.limit,
        }


def _int(value: str, field: str, minimum: int = 1) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value.strip()) or int(value) < minimum:
        raise BadQuery(field, f"must be an integer of at least {minimum}")
    return int(value)


def parse_query(params: Mapping[str, str], extra: Iterable[str] = ()) -> AuditQuery:
    """An AuditQuery from request parameters; unknown parameters are refused by name."""
    allowed = {"matter", "person", "since", "until", "kinds", "after", "limit", *extra}
    for key in params:
        if key not in allowed:
            raise BadQuery(key, "is not a known parameter")
    person: str | int | None = None
    if params.get("person"):
        raw = params["person"].strip()
        if _MXID.match(raw):
            person = raw
        else:
            person = _int(raw, "person")
    kinds: tuple[str, ...] = ("event",)
    if params.get("kinds"):
        kinds = tuple(k.strip() for k in params["kinds"].split(",") if k.strip())
        for k in kinds:
            if k != "all" and k not in KINDS:
                raise BadQuery("kinds", f"must be 'all' or among {', '.join(KINDS)}")
        if "all" in kinds:
            kinds = KINDS
    since = parse_time(params["since"], "since") if params.get("since") else None
    until = parse_time(params["until"], "until", end=True) if params.get("until") else None
    if since is not None and until is not None and until <= since:
        raise BadQuery("until", "must be after since")
    limit = _int(params["limit"], "limit") if params.get("limit") else 1000
    if limit > MAX_LIMIT:
        raise BadQuery("limit", f"must be at most {MAX_LIMIT}")
    return AuditQuery(
        matter=_int(params["matter"], "matter") if params.get("matter") else None,
        person=person,
        since=since,
        until=until,
        kinds=kinds,
        after=_int(params["after"], "after", 0) if params.get("after") else 0,
        limit=limit,
    )


async def resolve_person(conn: Any, person: str | int | None, domain: str) -> str | None:
    if person is None or isinstance(person, str):
        return person
    localpart = await conn.fetchval("SELECT localpart FROM person WHERE wp_id = $1", person)
    if localpart is None:
        raise BadQuery("person", f"no person with WordPress id {person}")
    return f"@{localpart}:{domain}"


async def fetch(conn: Any, q: AuditQuery, domain: str) -> list[dict]:
    """One page of records matching `q`, in chain order."""
    where = ["seq > $1"]
    args: list[Any] = [q.after]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where.append(f"kind IN ({', '.join(arg(k) for k in q.kinds)})")
    if q.matter is not None:
        m = arg(q.matter)
        where.append(
            f"(matter_id = {m} OR room_id = (SELECT room_id FROM matter WHERE wp_id = {m}))"
        )
    sender = await resolve_person(conn, q.person, domain)
    if sender is not None:
        where.append(f"sender = {arg(sender)}")
    if q.since is not None:
        where.append(f"ts >= {arg(q.since)}")
    if q.until is not None:
        where.append(f"ts < {arg(q.until)}")
    sql = (
        f"SELECT {', '.join(RECORD_COLS)} FROM audit_record WHERE {' AND '.join(where)}"
        f" ORDER BY seq LIMIT {arg(q.limit)}"
    )
    return [dict(r) for r in await conn.fetch(sql, *args)]


def exported(record: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: record.get(k) for k in EXPORT_COLS if k != "time"}
    row["time"] = iso(record["ts"])
    detail = row.get("detail")
    if isinstance(detail, str):
        row["detail"] = json.loads(detail)
    return {k: row[k] for k in EXPORT_COLS}


def to_csv(records: Iterable[Mapping[str, Any]], header: bool = True) -> str:
    out = io.StringIO()
    # Every cell quoted: the writer leaves a lone CR unquoted otherwise (its line terminator is
    # LF), and a client's CR would split the row in two for whoever reads the file.
    w = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header:
        w.writerow(EXPORT_COLS)
    for r in records:
        row = exported(r)
        if row["detail"] is not None:
            row["detail"] = json.dumps(row["detail"], sort_keys=True, separators=(",", ":"))
        w.writerow([csv_cell(row[c]) for c in EXPORT_COLS])
    return out.getvalue()


def csv_cell(value: Any) -> Any:
    """A value as a spreadsheet may open it: text that a spreadsheet would take for a formula
    gets a leading apostrophe.

    Clients choose event types, state keys, the device id an encrypted event names, their user
    agent and more, and an administrator opens this file in a spreadsheet: every text cell is
    treated alike rather than trusting any column to be harmless. Numbers stay numbers; the JSON
    export keeps every value exactly.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in _FORMULA:
        return "'" + value
    return value
