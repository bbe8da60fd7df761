"""The schema's migrations, each subsystem's in its own files (bridge/*/migrations/), make the
same database as the one file they were split from, and a database made by any earlier version
upgrades to the same schema as a new one: on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from conftest import PG_DSN
from mautrix.util.async_db import Database, Scheme, UpgradeTable

from bridge.db import create_database
from bridge.schema import upgrade_table

DATA = Path(__file__).resolve().parent / "data"
# The schema at v9 as bridge/db/upgrade.py made it before its migrations moved to their
# subsystems (recorded from that code on both databases).
SPLIT_AT = 9


async def schema_of(db: Database) -> list[str]:
    """Every table's columns (type, nullability, default), indexes and constraints, one line
    each, sorted: what the database holds, not how it was made."""
    if db.scheme == Scheme.SQLITE:
        lines = []
        tables = await db.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        for t in tables:
            for c in await db.fetch(f"PRAGMA table_info('{t['name']}')"):
                lines.append(
                    f"column {t['name']}.{c['name']} {c['type']} notnull={c['notnull']}"
                    f" default={c['dflt_value']} pk={c['pk']}"
                )
            for i in await db.fetch(f"PRAGMA index_list('{t['name']}')"):
                cols = [r["name"] for r in await db.fetch(f"PRAGMA index_info('{i['name']}')")]
                lines.append(
                    f"index {t['name']}({', '.join(cols)}) unique={i['unique']} origin={i['origin']}"
                )
            for f in await db.fetch(f"PRAGMA foreign_key_list('{t['name']}')"):
                lines.append(
                    f"foreign {t['name']}.{f['from']} -> {f['table']}.{f['to']}"
                    f" on delete {f['on_delete']}"
                )
        return sorted(lines)
    rows = await db.fetch(
        "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public'"
    )
    lines = [
        f"column {r['table_name']}.{r['column_name']} {r['data_type']}"
        f" nullable={r['is_nullable']} default={r['column_default']}"
        for r in rows
    ]
    for r in await db.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"):
        lines.append(f"index {r['indexdef']}")
    for r in await db.fetch(
        "SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS d"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    ):
        lines.append(f"constraint {r['t']}: {r['d']}")
    return sorted(lines)


def first(n: int) -> UpgradeTable:
    table = UpgradeTable()
    table.upgrades = upgrade_table.upgrades[:n]
    return table


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fresh_uri(kind: str, tmp_path: Path) -> Callable[[], AsyncIterator[str]]:
    """A new, empty database each time it is entered (several per test)."""

    @asynccontextmanager
    async def make() -> AsyncIterator[str]:
        if kind == "sqlite":
            yield f"sqlite:{tmp_path / uuid.uuid4().hex}.db"
            return
        name = f"firm_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(PG_DSN + "/postgres", timeout=30)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        try:
            yield f"{PG_DSN}/{name}"
        finally:
            conn = await asyncpg.connect(PG_DSN + "/postgres", timeout=30)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

    return make  # type: ignore[return-value]


async def made_by(uri: str, table: UpgradeTable) -> tuple[list[str], int]:
    db = create_database(uri, table, 2)
    await db.start()
    try:
        return await schema_of(db), await db.fetchval("SELECT version FROM version")
    finally:
        await db.stop()


async def test_the_split_migrations_make_the_schema_the_one_file_made(
    kind: str, fresh_uri: Callable
) -> None:
    async with fresh_uri() as uri:
        schema, version = await made_by(uri, first(SPLIT_AT))
    assert version == SPLIT_AT
    expected = (DATA / f"schema-v{SPLIT_AT}-{kind}.txt").read_text().splitlines()
    assert schema == expected


async def test_a_database_of_every_earlier_version_upgrades_to_the_new_schema(
    fresh_uri: Callable,
) -> None:
    newest = len(upgrade_table.upgrades)
    async with fresh_uri() as uri:
        target, version = await made_by(uri, upgrade_table)
    assert version == newest
    for old in range(1, newest):
        async with fresh_uri() as uri:
            db = create_database(uri, first(old), 2)
            await db.start()
            try:
                # A person, a matter and an assignment made at v1 travel through every upgrade.
                await db.execute(
                    "INSERT INTO person (wp_id, login, display_name, role, localpart)"
                    " VALUES (1, 'pat', 'Pat', 'partner', 'pat')"
                )
                await db.execute(
                    "INSERT INTO matter (wp_id, number, title, privileged, status,"
                    " alias_localpart) VALUES (7, 'M-7', 'Seven', false, 'closed', 'matter-m-7')"
                )
                await db.execute(
                    "INSERT INTO matter_assignment (matter_id, person_id, capacity)"
                    " VALUES (7, 1, 'responsible_partner')"
                )
            finally:
                await db.stop()
            schema, version = await made_by(uri, upgrade_table)
            assert (version, schema) == (newest, target), f"from v{old}"
            db = create_database(uri, upgrade_table, 2)
            await db.start()
            try:
                assert await db.fetchval("SELECT login FROM person WHERE wp_id = 1") == "pat"
                assert await db.fetchval("SELECT capacity FROM matter_assignment") == (
                    "responsible_partner"
                )
                if old < 3:  # v3 starts the retention clock of matters closed before it
                    assert await db.fetchval(
                        "SELECT closed_at FROM matter_retention WHERE matter_id = 7"
                    )
            finally:
                await db.stop()
