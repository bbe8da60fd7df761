"""The audit records the SHA-256 of each event as the homeserver serves it, and of its redacted
form: what a client reads later (with /messages, whatever `unsigned` says) hashes the same, before
and after a deletion. Real Synapse, real devices, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from audit_helpers import audit_rows, device, running_firm, wait_audited
from conftest import Firm, Homeserver

from bridge.audit import chain
from bridge.audit.eventhash import event_hash, is_served_redacted

from .conversation import people_and_matter, redact


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


async def served(dc, room_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every event of the room the device's user may see, oldest first, as served."""
    events: list[dict] = []
    token = None
    while True:
        params = {"dir": "f", "limit": "50"} | ({"from": token} if token else {})
        async with dc._session.get(
            f"{dc.base_url}/_matrix/client/v3/rooms/{quote(room_id)}/messages",
            params=params,
            headers={"Authorization": f"Bearer {dc.access_token}"},
        ) as r:
            page = await r.json()
            assert r.status == 200, page
        events += page["chunk"]
        token = page.get("end")
        if not page["chunk"] or not token:
            return events


async def test_served_events_hash_as_audited_before_and_after_deletion(audit_firm: Firm) -> None:
    firm = audit_firm
    room = await people_and_matter(firm)
    pat = await device(firm, "pat")
    try:
        kept = await pat.send_text(room, "kept")
        gone = await pat.send_text(room, "gone")
        redaction = await redact(pat, room, gone, "wrong matter")
        rows = await wait_audited(firm.bridge, [kept, gone, redaction])
        events = {e["event_id"]: e for e in await served(pat, room)}
    finally:
        await pat.stop()
    assert is_served_redacted(events[gone]) and not is_served_redacted(events[kept])
    assert rows[redaction]["redacts"] == gone
    # Every event the partner can read (state, messages, the redaction) hashes as audited; the
    # deleted one as its redacted form.
    all_rows = {r["event_id"]: r for r in await audit_rows(firm.bridge, "WHERE kind = 'event'")}
    for event_id, event in events.items():
        row = all_rows[event_id]
        expected = row["redacted_hash"] if is_served_redacted(event) else row["event_hash"]
        assert event_hash(event) == expected, (event["type"], event.get("state_key"))
        assert row["event_hash"] and len(row["event_hash"]) == 64
    # State events have a redacted form too (the room's version was recorded from its creation).
    member = next(e for e in events.values() if e["type"] == "m.room.member")
    assert all_rows[member["event_id"]]["redacted_hash"]
    # The hashes are part of the chain: a record's hash covers them.
    row = all_rows[kept]
    assert chain.link(row["prev_hash"], row) == row["hash"]
    assert chain.link(row["prev_hash"], {**row, "event_hash": "0" * 64}) != row["hash"]
    assert chain.link(row["prev_hash"], {**row, "event_hash": None}) != row["hash"]
