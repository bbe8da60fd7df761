"""Nothing lost, nothing twice: the bridge is killed with SIGKILL during a burst of 2,000
events from real clients, and restarted; the audit then holds every event exactly once and the
chain verifies."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
from audit_helpers import as_send, device, eventually
from conftest import SECRET, Firm, Homeserver, make_config
from test_process import spawn, wait_up

from bridge.devtools.client import ProvisioningClient

BURST = 2000
ENCRYPTED = 40
ROOMS = 4  # of which sent by real Olm/Megolm device clients


async def audited_counts(db_uri: str) -> dict[str, int]:
    sql = "SELECT event_id, COUNT(*) FROM audit_record WHERE kind = 'event' GROUP BY event_id"
    if db_uri.startswith("sqlite:"):
        conn = sqlite3.connect(f"file:{db_uri[7:]}?mode=ro", uri=True, timeout=10)
        try:
            return dict(conn.execute(sql).fetchall())
        finally:
            conn.close()
    pg = await asyncpg.connect(db_uri)
    try:
        return {r[0]: r[1] for r in await pg.fetch(sql)}
    finally:
        await pg.close()


async def test_sigkill_during_burst_loses_nothing(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    config = make_config(
        homeserver,
        db_uri,
        tmp_path,
        **{"homeserver.admin_token": homeserver.admin_token, "reconciler.workers": 2},
    )
    log = tmp_path / "bridge.log"
    api = ProvisioningClient(f"http://127.0.0.1:{homeserver.bridge_port}", SECRET)
    proc = spawn(config.path, homeserver.registration_path, log)
    # Firm gives unique ids and the helpers; its bridge is the subprocess, not in-process.
    firm = Firm(None, api, homeserver)  # type: ignore[arg-type]
    clients = []
    try:
        await wait_up(api, proc)
        await firm.person(1, "pat", "partner")
        await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
        # Several rooms: the homeserver orders events per room, so one room would be the limit.
        for m in range(ROOMS):
            await firm.matter(10 + m, clients=[4], responsible_partner=1)
        rooms = [(await firm.wait_synced("matter", 10 + m))["room_id"] for m in range(ROOMS)]
        senders = [f"@{firm.login(n)}:firm.test" for n in ("pat", "cal")]
        clients = [await device(firm, "pat"), await device(firm, "cal")]
        sent: list[str] = []

        async def plain(i: int) -> None:
            body = {"msgtype": "m.text", "body": f"burst {i}"}
            room = rooms[i % ROOMS]
            sent.append(
                await as_send(homeserver, room, senders[i % 2], "m.room.message", body, session)
            )

        async def encrypted(dc: object, n: int) -> None:
            for i in range(n):
                room = rooms[i % ROOMS]
                sent.append(await dc.send_text(room, f"e2ee burst {i}"))  # type: ignore[attr-defined]

        async def burst() -> None:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                async with sem:
                    await plain(i)

            await asyncio.gather(
                *(one(i) for i in range(BURST - ENCRYPTED)),
                *(encrypted(dc, ENCRYPTED // 2) for dc in clients),
            )

        session = aiohttp.ClientSession()
        sending = asyncio.create_task(burst())

        async def some_audited() -> bool:
            counts = await audited_counts(db_uri)
            return sum(1 for e in sent if e in counts) >= 300

        await eventually(some_audited, timeout=180, interval=0.05)
        proc.kill()
        at_kill = await audited_counts(db_uri)
        try:
            await sending  # the homeserver keeps taking events while the bridge is down
        finally:
            await session.close()
        assert len(sent) == BURST and len(set(sent)) == BURST
        assert sum(1 for e in sent if e in at_kill) < BURST, "the burst ended before the kill"

        proc.start()
        await wait_up(api, proc)

        async def all_audited() -> bool:
            counts = await audited_counts(db_uri)
            return all(e in counts for e in sent)

        await eventually(all_audited, timeout=240, interval=0.5)
        counts = await audited_counts(db_uri)
        assert all(c == 1 for c in counts.values()), "an event was audited twice"
        out = subprocess.run(
            [sys.executable, "-m", "bridge.audit", "-c", str(config.path), "verify"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and out.stdout.startswith("OK:"), out
    finally:
        for dc in clients:
            await dc.stop()
        proc.stop(timeout=15)
        await api.close()
