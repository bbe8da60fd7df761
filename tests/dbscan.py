"""Look for plaintext in every table of a SQLite or PostgreSQL database (and SQLite's raw files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg


def scan_sqlite(db_path: Path, needles: list[str]) -> list[str]:
    """'table.column' (or raw file) locations where any needle occurs."""
    hits = []
    raw_needles = [n.encode() for n in needles]
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables, f"no tables in {db_path}"
        for table in tables:
            cols = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for col, value in zip(cols, row, strict=False):
                    if isinstance(value, str):
                        raw = value.encode()
                    elif isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                    else:
                        continue
                    if any(n in raw for n in raw_needles):
                        hits.append(f"{table}.{col}")
    finally:
        conn.close()
    # Also the raw files, where freed pages and the WAL may still hold old rows.
    for suffix in ("", "-wal", "-journal"):
        path = Path(f"{db_path}{suffix}")
        if path.exists() and any(n in path.read_bytes() for n in raw_needles):
            hits.append(f"<raw file {path.name}>")
    return hits


async def scan_postgres(dsn: str, needles: list[str]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    hits = []
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        assert tables, f"no tables in {dsn}"
        for table in tables:
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):
                for col, value in row.items():
                    text = (
                        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    )
                    if any(n in text for n in needles):
                        hits.append(f"{table}.{col}")
    finally:
        await conn.close()
    return hits
