"""The bridge's database: PostgreSQL (asyncpg) in production, SQLite as the embedded default.

Opened with the whole schema by bridge/schema.py (`open_database`); `store` is the SQL of the
desired state, `migrations` the versions that make its tables.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mautrix.util.async_db import Connection, Database, UpgradeTable

__all__ = ["create_database", "transaction"]


def create_database(uri: str, upgrade_table: UpgradeTable, max_connections: int = 10) -> Database:
    log = logging.getLogger("bridge.db")
    if uri.startswith("postgres"):
        args = {"min_size": 1, "max_size": max_connections}
        return Database.create(uri, upgrade_table=upgrade_table, db_args=args, log=log)
    # SQLite takes one writer; one connection keeps transactions from interleaving.
    return Database.create(uri, upgrade_table=upgrade_table, log=log)


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Connection]:
    """One DB transaction: committed when the block ends, rolled back if it raises."""
    async with db.acquire() as conn, conn.transaction():  # type: ignore[var-annotated]
        yield conn
