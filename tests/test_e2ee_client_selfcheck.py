"""Self-check for tests/e2ee_client.py against a real Synapse on loopback.

Two real devices (alice, bob, logged in through an appservice) exchange Megolm-encrypted
messages in an encrypted room; then the Synapse database is searched to prove the homeserver
only ever stored ciphertext.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from tests.e2ee_client import DeviceClient

SERVER_NAME = "e2ee.test"
ALICE = f"@e2_alice:{SERVER_NAME}"
BOB = f"@e2_bob:{SERVER_NAME}"

_RATE = {"per_second": 1000, "burst_count": 1000}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class E2eeHomeserver:
    base_url: str
    as_token: str
    db_path: Path
    log_path: Path


def _write_config(workdir: Path, port: int, as_token: str) -> Path:
    registration = {
        "id": "e2",
        "url": None,
        "as_token": as_token,
        "hs_token": secrets.token_hex(16),
        "sender_localpart": "e2bot",
        "rate_limited": False,
        "namespaces": {
            "users": [{"exclusive": True, "regex": "@e2_.*:e2ee\\.test"}],
            "aliases": [],
            "rooms": [],
        },
    }
    reg_path = workdir / "e2-registration.yaml"
    reg_path.write_text(json.dumps(registration, indent=2))  # JSON is valid YAML
    config = {
        "server_name": SERVER_NAME,
        "pid_file": str(workdir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "media_store_path": str(workdir / "media_store"),
        "signing_key_path": str(workdir / f"{SERVER_NAME}.signing.key"),
        "report_stats": False,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "app_service_config_files": [str(reg_path)],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "rc_message": _RATE,
        "rc_registration": _RATE,
        "rc_login": {"address": _RATE, "account": _RATE, "failed_attempts": _RATE},
        "rc_joins": {"local": _RATE, "remote": _RATE},
        "rc_joins_per_room": _RATE,
        "rc_invites": {"per_room": _RATE, "per_user": _RATE, "per_issuer": _RATE},
        "rc_key_requests": _RATE,
        "rc_room_creation": _RATE,
        "rc_profile": _RATE,
        "rc_presence": {"per_user": _RATE},
        "rc_admin_redaction": _RATE,
    }
    path = workdir / "homeserver.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


async def _run_checked(*args: str, log: Path) -> None:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out)
        rc = await asyncio.wait_for(proc.wait(), 120)
    if rc != 0:
        raise RuntimeError(f"{args[:4]} failed with {rc}, see {log}")


@pytest_asyncio.fixture
async def e2ee_synapse(tmp_path: Path) -> AsyncIterator[E2eeHomeserver]:
    workdir = tmp_path / "synapse"
    workdir.mkdir()
    port = _free_port()
    as_token = secrets.token_hex(24)
    config_path = _write_config(workdir, port, as_token)
    log_path = workdir / "synapse.log"
    await _run_checked(
        sys.executable, "-m", "synapse.app.homeserver", "--generate-keys",
        "-c", str(config_path), log=log_path,
    )  # fmt: skip
    with log_path.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "synapse.app.homeserver", "-c", str(config_path),
            stdout=out, stderr=out, cwd=str(workdir),
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"synapse exited with {proc.returncode}, see {log_path}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base_url}/_matrix/client/versions") as resp:
                        if resp.status == 200:
                            break
                if loop.time() > deadline:
                    raise TimeoutError(f"synapse did not come up, see {log_path}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 0.2)  # poll interval / early exit
        yield E2eeHomeserver(base_url, as_token, workdir / "homeserver.db", log_path)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _as_request(
    http: aiohttp.ClientSession,
    hs: E2eeHomeserver,
    method: str,
    path: str,
    body: dict[str, Any],
    user_id: str | None = None,
) -> dict[str, Any]:
    params = {"user_id": user_id} if user_id else None
    async with http.request(
        method,
        f"{hs.base_url}/_matrix/client/v3{path}",
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {hs.as_token}"},
    ) as resp:
        data = await resp.json()
        assert resp.status == 200, (method, path, resp.status, data.get("errcode"))
        return data


def _scan_database(db_path: Path, needles: list[str]) -> list[str]:
    """Return 'table.column' (or raw file) locations where any needle occurs."""
    hits = []
    raw_needles = [n.encode() for n in needles]
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        assert "event_json" in tables and "events" in tables
        for table in tables:
            cols = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for col, value in zip(cols, row, strict=False):
                    if isinstance(value, str):
                        raw = value.encode()
                    elif isinstance(value, (bytes, bytearray, memoryview)):
                        raw = bytes(value)
                    else:
                        continue
                    if any(n in raw for n in raw_needles):
                        hits.append(f"{table}.{col}")
    finally:
        conn.close()
    # Belt and braces: also the raw database files (incl. WAL / freed pages).
    for suffix in ("", "-wal", "-journal"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            data = path.read_bytes()
            if any(n in data for n in raw_needles):
                hits.append(f"<raw file {path.name}>")
    return hits


@pytest.mark.asyncio
async def test_two_devices_exchange_megolm_messages(e2ee_synapse: E2eeHomeserver) -> None:
    hs = e2ee_synapse
    hello = "hello bob"
    reply = f"hi alice, decrypted fine {secrets.token_hex(4)}"

    async with aiohttp.ClientSession() as http:
        for localpart in ("e2_alice", "e2_bob"):
            await _as_request(
                http, hs, "POST", "/register",
                {"type": "m.login.application_service", "username": localpart,
                 "inhibit_login": True},
            )  # fmt: skip
        room = await _as_request(
            http, hs, "POST", "/createRoom",
            {
                "preset": "private_chat",
                "name": "e2ee selfcheck",
                "initial_state": [
                    {"type": "m.room.encryption", "state_key": "",
                     "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
                ],
            },
            user_id=ALICE,
        )  # fmt: skip
        room_id = room["room_id"]
        await _as_request(http, hs, "POST", f"/rooms/{quote(room_id)}/invite",
                          {"user_id": BOB}, user_id=ALICE)  # fmt: skip
        await _as_request(http, hs, "POST", f"/join/{quote(room_id)}", {}, user_id=BOB)

    alice = await DeviceClient.login_appservice(hs.base_url, hs.as_token, ALICE, "alice test")
    bob = await DeviceClient.login_appservice(hs.base_url, hs.as_token, BOB, "bob test")
    assert alice.user_id == ALICE and bob.user_id == BOB
    assert alice.device_id and bob.device_id and alice.access_token != bob.access_token
    try:
        await asyncio.gather(alice.start(), bob.start())

        event_id = await alice.send_text(room_id, hello)
        assert event_id.startswith("$")
        assert await bob.wait_for_text(room_id, hello, sender=ALICE, timeout=30) == hello

        reply_id = await bob.send_text(room_id, reply)
        assert reply_id.startswith("$") and reply_id != event_id
        assert await alice.wait_for_text(room_id, reply, sender=BOB, timeout=30) == reply

        # Alice's own echo is decrypted too, but only reported when asked for by sender.
        with pytest.raises(TimeoutError):
            await alice.wait_for_text(room_id, hello, timeout=0.5)
        assert await alice.wait_for_text(room_id, hello, sender=ALICE, timeout=30) == hello
        assert not alice.decryption_failures and not bob.decryption_failures
    finally:
        await asyncio.gather(alice.stop(), bob.stop())

    # --- What did the homeserver store? -------------------------------------------------
    conn = sqlite3.connect(f"file:{hs.db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT event_id, json FROM event_json WHERE room_id = ?", (room_id,)
        ).fetchall()
    finally:
        conn.close()
    types = {eid: json.loads(raw)["type"] for eid, raw in rows}
    assert types.get(event_id) == "m.room.encrypted"
    assert types.get(reply_id) == "m.room.encrypted"
    assert "m.room.encryption" in types.values()
    assert "m.room.message" not in types.values()

    hits = _scan_database(hs.db_path, [hello, reply])
    assert hits == [], f"plaintext found in the homeserver database: {hits}"
    assert hello.encode() not in hs.log_path.read_bytes()
