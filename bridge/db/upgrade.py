"""The bridge's schema versions as one mautrix UpgradeTable, made of each subsystem's migrations.

The database records one version number, so versions are one sequence across the bridge. Each
subsystem owns its tables and keeps their migrations beside its code, one file per version:
`bridge/<subsystem>/migrations/vNN_<what>.py` with VERSION, DESCRIPTION and
`async def upgrade(conn, scheme)`, listed in that package's MIGRATIONS. A new migration takes the
next free number, whichever subsystem it belongs to; bridge/schema.py joins the lists, and
`build` refuses a number used twice or left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from mautrix.util.async_db import UpgradeTable


class SchemaError(Exception):
    """The migrations do not form one sequence 1..N."""


def build(*subsystems: Iterable[ModuleType]) -> UpgradeTable:
    migrations = sorted((m for sub in subsystems for m in sub), key=lambda m: m.VERSION)
    versions = [m.VERSION for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migration versions must run 1..N without gaps, found {versions}")
    table = UpgradeTable()
    for migration in migrations:
        table.register(migration.upgrade, description=migration.DESCRIPTION)  # type: ignore[call-arg, arg-type]
    return table
