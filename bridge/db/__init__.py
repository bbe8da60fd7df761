"""The bridge's database: PostgreSQL (asyncpg) in production, SQLite as the embedded default."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mautrix.util.async_db import Connection, Database

from .upgrade import upgrade_table

__all__ = ["open_database", "transaction", "upgrade_table"]


def open_database(uri: str, max_connections: int = 10) -> Database:
    # SQLite takes one writer; one connection keeps transactions from interleaving.
    args = {"min_size": 1, "max_size": max_connections} if uri.startswith("postgres") else {}
    if uri.startswith("postgres"):
        return Database.create(
            uri, upgrade_table=upgrade_table, db_args=args, log=logging.getLogger("bridge.db")
        )
    return Database.create(uri, upgrade_table=upgrade_table, log=logging.getLogger("bridge.db"))


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Connection]:
    """One DB transaction: committed when the block ends, rolled back if it raises."""
    async with db.acquire() as conn, conn.transaction():  # type: ignore[var-annotated]
        yield conn
