"""The audit trail's migrations: one file per version, each as it ran (frozen: a migration never imports the
code it once served). Versions are one sequence across the bridge (bridge/db/upgrade.py)."""

from __future__ import annotations

from . import v03_audit_trail, v05_room_matter, v08_event_hashes

MIGRATIONS = (
    v03_audit_trail,
    v05_room_matter,
    v08_event_hashes,
)
