"""The hash chain: canonical serialization, linking, and the verifier. Pure: no I/O.

Each record's hash is SHA-256 over the previous record's hash (32 raw bytes) followed by the
record's canonical serialization: the fields in FIELDS as a JSON object with sorted keys, no
whitespace, UTF-8, strings and integers as they are and absent values as null (the same rules as
Matrix canonical JSON, for the only value types records hold). The first record links to GENESIS.

Records sealed since migration v6 also carry, for events, the SHA-256 of the event's canonical JSON
as served (without `unsigned`), of its redacted form, and the event a redaction removes
(OPTIONAL_FIELDS, eventhash.py): each is hashed only when it has a value, so records
sealed before keep their hashes, and removing or adding one later breaks the link all the same.

`seq` (the storage order) is deliberately not hashed: what makes a record part of the chain is
its link. A record inserted by hand and its successors renumbered then reads as one insertion,
and a gap in seq with a broken link as a removal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

GENESIS = "0" * 64

# Every field of a record that its hash covers (all columns but seq, prev_hash and hash).
FIELDS = (
    "kind",
    "event_id",
    "room_id",
    "matter_id",
    "sender",
    "device_id",
    "event_type",
    "state_key",
    "ts",
    "size",
    "client_ip",
    "user_agent",
    "source",
    "actor",
    "detail",
    "recorded_at",
)
# Hashed only when not null (added after records were sealed without them).
OPTIONAL_FIELDS = ("event_hash", "redacted_hash", "redacts")

_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def canonical(record: Mapping[str, Any]) -> bytes:
    body = {k: record[k] for k in FIELDS}
    for k in OPTIONAL_FIELDS:
        if record.get(k) is not None:
            body[k] = record[k]
    return _dumps(body).encode()


def link(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The hash of `record` appended after a record whose hash is `prev_hash`."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(record)).hexdigest()


@attrs.define(frozen=True)
class Problem:
    """The first place where the chain is not what was written."""

    kind: str  # "altered", "removed" or "inserted"
    seq: int  # the first record concerned
    last_seq: int | None  # for a run of removed records, the last one
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seq": self.seq,
            "last_seq": self.last_seq,
            "message": self.message,
        }


@attrs.define(frozen=True)
class Verdict:
    ok: bool
    records: int  # records checked and found intact before the problem (or all of them)
    head_seq: int
    head_hash: str
    problem: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problem": self.problem.to_dict() if self.problem else None,
        }


def _removed(first: int, last: int, why: str) -> Problem:
    span = f"seq {first}" if first == last else f"seq {first} to {last}"
    return Problem("removed", first, last, f"record {span} removed ({why})")


class Verifier:
    """Walks the records in seq order and names the first one altered, removed or inserted.

    Feed records one at a time (`feed` returns False once a problem is found), then call
    `finish`. `head` is the (seq, hash) the database says was appended last; `anchors` are
    (seq -> hash) from signed head exports kept elsewhere, which also catch a chain rewritten
    wholesale. Holds two records at a time, whatever the length of the chain.
    """

    def __init__(
        self, head: tuple[int, str] | None = None, anchors: Mapping[int, str] | None = None
    ) -> None:
        self.head = head
        self.anchors = dict(anchors or {})
        self.prev_seq, self.prev_hash = 0, GENESIS
        self._before_prev: str | None = None  # the hash of the record before prev
        self.checked = 0
        self.problem: Problem | None = None
        self._buffered: Mapping[str, Any] | None = None

    def feed(self, row: Mapping[str, Any]) -> bool:
        if self.problem is None and self._buffered is not None:
            self._check(self._buffered, row)
        self._buffered = row
        return self.problem is None

    def finish(self) -> Verdict:
        if self.problem is None and self._buffered is not None:
            self._check(self._buffered, None)
        self._buffered = None
        if self.problem is None:
            self._check_end()
        if self.problem is not None:
            return Verdict(False, self.checked, self.prev_seq, self.prev_hash, self.problem)
        return Verdict(True, self.checked, self.prev_seq, self.prev_hash)

    def _check(self, r: Mapping[str, Any], n: Mapping[str, Any] | None) -> None:
        prev_seq, prev_hash = self.prev_seq, self.prev_hash
        seq = r["seq"]
        if self.head is not None and seq > self.head[0]:
            self.problem = Problem(
                "inserted",
                seq,
                None,
                f"record seq {seq} inserted: it lies after the chain head (seq {self.head[0]})",
            )
            return
        self_ok = link(r["prev_hash"], r) == r["hash"]
        link_ok = r["prev_hash"] == prev_hash
        if self_ok and link_ok:
            if seq in self.anchors and self.anchors[seq] != r["hash"]:
                self.problem = Problem(
                    "altered",
                    seq,
                    None,
                    f"the chain up to seq {seq} was rewritten: it differs from the exported head",
                )
                return
            self._before_prev = self.prev_hash
            self.prev_seq, self.prev_hash = seq, r["hash"]
            self.checked += 1
            return
        if n is not None and n["prev_hash"] == prev_hash and link(n["prev_hash"], n) == n["hash"]:
            self.problem = Problem(
                "inserted",
                seq,
                None,
                f"record seq {seq} inserted: the next record links past it to seq {prev_seq}",
            )
        elif not self_ok:
            self.problem = Problem(
                "altered",
                seq,
                None,
                f"record seq {seq} altered: its fields no longer match its hash",
            )
        elif seq > prev_seq + 1:
            self.problem = _removed(
                prev_seq + 1, seq - 1, f"seq {seq} does not link to seq {prev_seq}"
            )
        elif r["prev_hash"] == self._before_prev:
            # It links past the record before it, which passed every check of its own: that
            # record was forged (hashed and linked correctly) and slipped in.
            self.checked -= 1
            self.problem = Problem(
                "inserted",
                prev_seq,
                None,
                f"record seq {prev_seq} inserted: seq {seq} links past it to the record before",
            )
        elif prev_seq == 0:
            self.problem = Problem(
                "removed", 1, None, "the first record(s) removed: seq 1 does not start the chain"
            )
        else:
            # Contiguous and self-consistent, but linked to something else: the record before it
            # was rewritten with a freshly computed hash (or records after it were removed and
            # the rest renumbered, which the signed head exports tell apart).
            self.problem = Problem(
                "altered",
                prev_seq,
                None,
                f"record seq {prev_seq} altered: its hash was recomputed, and seq {seq} still"
                " links to the original",
            )

    def _check_end(self) -> None:
        if self.head is not None:
            if self.prev_seq < self.head[0]:
                self.problem = _removed(
                    self.prev_seq + 1, self.head[0], f"the chain head is seq {self.head[0]}"
                )
                return
            if self.prev_hash != self.head[1]:
                self.problem = Problem(
                    "altered",
                    self.prev_seq,
                    None,
                    f"record seq {self.prev_seq} altered: it differs from the chain head",
                )
                return
        beyond = [s for s in self.anchors if s > self.prev_seq]
        if beyond:
            first = min(beyond)
            self.problem = _removed(self.prev_seq + 1, first, f"an exported head names seq {first}")


def verify(
    rows: Iterable[Mapping[str, Any]],
    head: tuple[int, str] | None = None,
    anchors: Mapping[int, str] | None = None,
) -> Verdict:
    """Verify records held in memory (see Verifier)."""
    v = Verifier(head, anchors)
    for row in rows:
        if not v.feed(row):
            break
    return v.finish()
