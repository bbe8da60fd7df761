"""The media gateway's migrations: one file per version, each as it ran (frozen: a migration never imports the
code it once served). Versions are one sequence across the bridge (bridge/db/upgrade.py)."""

from __future__ import annotations

from . import v04_media, v06_upload_room

MIGRATIONS = (
    v04_media,
    v06_upload_room,
)
