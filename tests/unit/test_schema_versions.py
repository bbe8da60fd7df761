"""The schema's versions are one sequence across the subsystems' migrations: each file says its
version, and a number used twice or left out stops the bridge before it touches a database."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridge.audit.migrations import MIGRATIONS as AUDIT
from bridge.db.migrations import MIGRATIONS as DESIRED_STATE
from bridge.db.upgrade import SchemaError, build
from bridge.media.migrations import MIGRATIONS as MEDIA
from bridge.notify.migrations import MIGRATIONS as NOTICES
from bridge.schema import upgrade_table


def test_each_file_is_its_version_in_one_sequence() -> None:
    every = [*DESIRED_STATE, *AUDIT, *MEDIA, *NOTICES]
    for migration in every:
        assert migration.__name__.rpartition(".")[2].startswith(f"v{migration.VERSION:02d}_")
    assert sorted(m.VERSION for m in every) == list(range(1, len(every) + 1))
    assert [u.__mau_db_upgrade_description__ for u in upgrade_table.upgrades] == [  # type: ignore[attr-defined]
        m.DESCRIPTION for m in sorted(every, key=lambda m: m.VERSION)
    ]


async def _noop(conn: object, scheme: object) -> None:
    return None


def migration(version: int) -> SimpleNamespace:
    return SimpleNamespace(VERSION=version, DESCRIPTION=f"v{version}", upgrade=_noop)


@pytest.mark.parametrize("versions", [[1, 3], [1, 2, 2], [2, 3]])
def test_a_gap_or_a_number_used_twice_is_refused(versions: list[int]) -> None:
    with pytest.raises(SchemaError, match="without gaps"):
        build([migration(v) for v in versions])  # type: ignore[misc]
