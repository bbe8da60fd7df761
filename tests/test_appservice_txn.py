"""Appservice transactions are the same only when their id and their content are.

Synapse on SQLite numbers transactions from the highest one still pending, so after a restart it
sends ids from 1 again; a bridge keyed on the id alone answered those new transactions with `{}`
and lost their events (the audit recorded them only at its next start, and the repairs they
should have triggered never ran).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from audit_helpers import as_send, audit_rows, matter_with_people, mxid, wait_audited
from conftest import Firm, Homeserver, make_config, running_bridge, running_homeserver

from bridge.db import store


@pytest.fixture
def own_homeserver(tmp_path: Path) -> Iterator[Homeserver]:
    """A Synapse of this test's own (on SQLite, as the harness runs it): it is restarted."""
    work = tmp_path / "synapse"
    work.mkdir()
    with running_homeserver(work) as hs:
        yield hs


async def test_synapse_restart_reusing_ids_loses_no_event(
    own_homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    hs = own_homeserver
    async with running_bridge(make_config(hs, db_uri, tmp_path), hs) as firm:
        room = await matter_with_people(firm)
        partner = mxid(firm, "pat")
        body = {"msgtype": "m.text", "body": "before"}
        first = await as_send(hs, room, partner, "m.room.message", body)
        await wait_audited(firm.bridge, [first])

        hs.server.stop()
        hs.server.start()
        body = {"msgtype": "m.text", "body": "after"}
        second = await as_send(hs, room, partner, "m.room.message", body)
        await wait_audited(firm.bridge, [second])

        # Both live (from a transaction: the gap fill runs only when the bridge starts), once.
        events = await audit_rows(firm.bridge, "WHERE kind = 'event'")
        for event_id in (first, second):
            assert [r["source"] for r in events if r["event_id"] == event_id] == ["txn"]
        # The restarted Synapse did reuse an id the bridge had applied (what lost events).
        async with firm.bridge.db.acquire() as conn:
            reused = await conn.fetch(
                "SELECT txn_id FROM appservice_txn GROUP BY txn_id HAVING COUNT(*) > 1"
            )
        assert reused, "Synapse did not number transactions again; the test proves nothing"


async def test_retry_applied_once_and_reused_id_applied(
    firm: Firm, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery's effect here: a change to a matter room's state by anyone but the bridge is
    drift, and marks the matter for a repair (its desired version goes up by one)."""
    room = await matter_with_people(firm)
    matter = firm.pid(10)

    async def version() -> int:
        async with firm.bridge.db.acquire() as conn:
            row = await store.matter_sync_row(conn, matter)
        return int(row["desired_version"])

    def topic_change(topic: str, age: int) -> dict:
        return {
            "type": "m.room.topic",
            "state_key": "",
            "room_id": room,
            "sender": mxid(firm, "pat"),
            "content": {"topic": topic},
            "event_id": f"$drift-{uuid.uuid4().hex}",
            "origin_server_ts": int(time.time() * 1000),
            "unsigned": {"age": age},
        }

    async def deliver(txn_id: str, events: list[dict]) -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.put(
                f"http://127.0.0.1:{firm.hs.bridge_port}/_matrix/app/v1/transactions/{txn_id}",
                json={"events": events},
                headers={"Authorization": f"Bearer {firm.hs.registration.hs_token}"},
            ) as r,
        ):
            assert (r.status, await r.json()) == (200, {})

    caplog.set_level(logging.INFO, logger="bridge.appservice")
    txn_id = f"t{uuid.uuid4().hex}"
    event = topic_change("hand-edited", age=12)
    before = await version()
    await deliver(txn_id, [event])
    assert await version() == before + 1
    # A retry: the same id and content, serialized again (Synapse's `age` has moved on).
    await deliver(txn_id, [{**event, "unsigned": {"age": 30_012}}])
    assert await version() == before + 1
    assert "reused" not in caplog.text
    # The same id with other content is another transaction: applied, and said so.
    await deliver(txn_id, [topic_change("edited again", age=5)])
    assert await version() == before + 2
    assert f"Transaction id {txn_id} reused with other content" in caplog.text
