"""The bridge's check of a bundle's events against the audit chain. Pure: no I/O.

Every event of the bundle must be an audited event of the room, within the range, whose recorded
hash is the bundle's (or, when served redacted, whose recorded redacted form is, with the
redaction the chain recorded for it); every audited event of the room in the range must be in the
bundle (completeness), except what retention purged. Records sealed before events were hashed are
reported as unhashed, never silently accepted as checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs


@attrs.define(frozen=True)
class Problem:
    event_id: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"event_id": self.event_id, "problem": self.kind, "message": self.message}


@attrs.define
class Outcome:
    problems: list[Problem]
    checked: list[dict[str, Any]]  # per bundle event: seq, record hash, status

    @property
    def unhashed(self) -> list[str]:
        return [c["event_id"] for c in self.checked if c["status"] == "unhashed"]


def check(
    room_id: str,
    since: int,
    until: int,
    bundle: Sequence[Mapping[str, Any]],
    records: Mapping[str, Mapping[str, Any]],
    in_range: Iterable[str],
    redactions: Mapping[str, Sequence[Mapping[str, Any]]],
    purged: Iterable[str] = (),
) -> Outcome:
    """`records`: the audit records of the bundle's events and of the redactions they name (by
    event id, any room); `in_range`: the ids of the room's audited events in the range;
    `redactions`: for each bundle event, the audited redactions of it."""
    problems: list[Problem] = []
    checked: list[dict[str, Any]] = []
    listed = {e["event_id"] for e in bundle}
    for e in bundle:
        event_id = e["event_id"]
        rec = records.get(event_id)
        if rec is None:
            problems.append(
                Problem(event_id, "not_in_chain", f"{event_id} is not in the audit chain")
            )
            continue
        if rec["room_id"] != room_id:
            problems.append(Problem(event_id, "other_room", f"{event_id} belongs to another room"))
            continue
        if not since <= rec["ts"] <= until:
            problems.append(
                Problem(event_id, "outside_range", f"{event_id} lies outside the exported range")
            )
            continue
        status = _status(e, rec, records, redactions.get(event_id, ()), problems)
        if status is not None:
            checked.append(
                {
                    "event_id": event_id,
                    "sha256": e["sha256"],
                    "seq": rec["seq"],
                    "record_hash": rec["hash"],
                    "status": status,
                }
            )
    gone = set(purged)
    for event_id in sorted(set(in_range) - listed - gone):
        problems.append(
            Problem(
                event_id,
                "missing",
                f"{event_id} is in the audit chain for this room and range but not in the bundle",
            )
        )
    return Outcome(problems, checked)


def _status(
    e: Mapping[str, Any],
    rec: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    redactions: Sequence[Mapping[str, Any]],
    problems: list[Problem],
) -> str | None:
    event_id = e["event_id"]
    by = e.get("redacted_by")
    if by is None:
        if redactions:
            problems.append(
                Problem(
                    event_id,
                    "deletion_hidden",
                    f"{event_id} was deleted by {redactions[0]['event_id']}, but the bundle shows"
                    " it as it was before",
                )
            )
            return None
        if rec.get("event_hash") is None:
            return "unhashed"
        if rec["event_hash"] != e["sha256"]:
            problems.append(
                Problem(
                    event_id, "altered", f"{event_id} differs from the event the chain recorded"
                )
            )
            return None
        return "intact"
    redaction = records.get(by["event_id"])
    if redaction is None or redaction.get("redacts") != event_id or redaction not in redactions:
        problems.append(
            Problem(
                event_id,
                "deletion_unrecorded",
                f"{event_id} is shown deleted by {by['event_id']}, which the chain does not record"
                " as deleting it",
            )
        )
        return None
    if redaction.get("event_hash") is not None and redaction["event_hash"] != by["sha256"]:
        problems.append(
            Problem(
                event_id,
                "altered",
                f"the deletion {by['event_id']} of {event_id} differs from the one the chain"
                " recorded",
            )
        )
        return None
    if rec.get("redacted_hash") is None or redaction.get("event_hash") is None:
        return "unhashed"
    if rec["redacted_hash"] != e["sha256"]:
        problems.append(
            Problem(event_id, "altered", f"{event_id} differs from the event the chain recorded")
        )
        return None
    return "redacted"
