"""What changed in the firm between two snapshots, so the homeserver module reads a few entries
instead of the whole firm (a large firm's snapshot is megabytes, parsed on Synapse's reactor).
Pure: no I/O.

The bridge keeps, for the last few generations, each entry's canonical JSON; a delta lists the
entries whose JSON differs or is new, the ids that are gone, and the policy if it changed. It is
computed from whole snapshots, not from the writes that made them, so no change can be left out
of it; a module whose base generation is no longer kept gets the whole snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

# Each section of a snapshot and the field that identifies its entries.
SECTIONS = {"people": "user_id", "matters": "wp_id"}
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@attrs.define(frozen=True)
class SnapshotIndex:
    generation: int
    entries: Mapping[str, Mapping[Any, str]]  # section -> id -> canonical JSON of the entry
    policy: str


def index(data: Mapping[str, Any]) -> SnapshotIndex:
    return SnapshotIndex(
        generation=data["generation"],
        entries={
            section: {e[key]: _canonical(e) for e in data[section]}
            for section, key in SECTIONS.items()
        },
        policy=_canonical(data["policy"]),
    )


def delta(base: SnapshotIndex, data: Mapping[str, Any], current: SnapshotIndex) -> dict[str, Any]:
    """The changes from `base` to `data` (whose index is `current`), as the module applies them
    (FirmView.apply): changed or new entries whole, removed ids, the policy only if it changed."""
    out: dict[str, Any] = {"delta": True, "base_generation": base.generation}
    for section, key in SECTIONS.items():
        old, new = base.entries[section], current.entries[section]
        out[section] = [e for e in data[section] if old.get(e[key]) != new[e[key]]]
        out["removed_" + section] = sorted(k for k in old if k not in new)
    if base.policy != current.policy:
        out["policy"] = data["policy"]
    return out
