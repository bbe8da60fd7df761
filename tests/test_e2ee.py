"""End-to-end proof: an attorney's and a client's devices talk in a matter room the bridge made,
and neither the homeserver nor the bridge ever holds a readable word of it."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
from pathlib import Path

import pytest
from conftest import Firm
from dbscan import scan_postgres, scan_sqlite
from e2ee_client import DeviceClient


async def test_attorney_and_client_exchange_encrypted_messages(
    firm: Firm, db_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge")
    await firm.person(1, "pat", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[4], responsible_partner=1, privileged=True)
    room = (await firm.wait_synced("matter", 10))["room_id"]
    pat, cal = (f"@{firm.login(n)}:firm.test" for n in ("pat", "cal"))
    question = f"privileged question {secrets.token_hex(6)}"
    answer = f"privileged answer {secrets.token_hex(6)}"

    token = firm.hs.registration.as_token
    attorney = await DeviceClient.login_appservice(firm.hs.url, token, pat, "attorney laptop")
    client = await DeviceClient.login_appservice(firm.hs.url, token, cal, "client browser")
    try:
        await asyncio.gather(attorney.start(), client.start())
        asked = await client.send_text(room, question)
        assert await attorney.wait_for_text(room, question, sender=cal) == question
        answered = await attorney.send_text(room, answer)
        assert await client.wait_for_text(room, answer, sender=pat) == answer
        assert not attorney.decryption_failures and not client.decryption_failures
    finally:
        await asyncio.gather(attorney.stop(), client.stop())

    # The homeserver stored only ciphertext for them.
    conn = sqlite3.connect(f"file:{firm.hs.server.db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT event_id, json FROM event_json WHERE room_id = ?", (room,)
        ).fetchall()
    finally:
        conn.close()
    sent = {eid: json.loads(raw) for eid, raw in rows}
    assert sent[asked]["type"] == sent[answered]["type"] == "m.room.encrypted"
    theirs = [e for e in sent.values() if e["sender"] in (pat, cal) and "state_key" not in e]
    assert theirs and {e["type"] for e in theirs} == {"m.room.encrypted"}

    needles = [question, answer]
    assert scan_sqlite(firm.hs.server.db_path, needles) == []
    if db_uri.startswith("sqlite:"):
        assert scan_sqlite(Path(db_uri.removeprefix("sqlite:")), needles) == []
    else:
        assert await scan_postgres(db_uri, needles) == []
    # Nor in any log line of the bridge's, nor the homeserver's.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and all(n not in logged for n in needles)
    assert all(n.encode() not in firm.hs.server.log_path.read_bytes() for n in needles)
