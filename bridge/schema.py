"""The bridge's whole schema: every subsystem's migrations in the one version sequence its
database records (bridge/db/upgrade.py), and the database opened with it."""

from __future__ import annotations

from mautrix.util.async_db import Database

from .audit.migrations import MIGRATIONS as AUDIT
from .db import create_database
from .db.migrations import MIGRATIONS as DESIRED_STATE
from .db.upgrade import build
from .media.migrations import MIGRATIONS as MEDIA
from .notify.migrations import MIGRATIONS as NOTICES

upgrade_table = build(DESIRED_STATE, AUDIT, MEDIA, NOTICES)


def open_database(uri: str, max_connections: int = 10) -> Database:
    """The bridge's database; its pending migrations run when it starts."""
    return create_database(uri, upgrade_table, max_connections)
