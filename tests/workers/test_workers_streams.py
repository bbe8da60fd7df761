"""What flows between the processes of the worker topology: media through the bridge's gateway
from the media worker, appservice transactions from the worker that sends them, the audit
ingesting each event exactly once, and workers killed and restarted mid-test with nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from media_helpers import access_mismatches, build_access_world, ciphertext, download, upload

from .conftest import WorkersFirm, eventually, request


def served(log: Path, path_part: str) -> int:
    """How many requests whose path contains `path_part` one Synapse process served."""
    text = log.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "synapse.access" in line and path_part in line)


async def test_media_through_the_gateway_from_the_media_worker(
    wfirm: WorkersFirm, tmp_path: Path
) -> None:
    """The media gateway's whole access matrix through the clients' address (nginx, the gateway,
    the router, media1), a room-scoped upload, and media1 alone serving the files."""
    topo = wfirm.topology
    base = topo.clients_url
    world = await build_access_world(wfirm, base, tmp_path)
    assert await access_mismatches(base, world) == []

    # The portal widget's room-scoped upload: members of that room only.
    member, outsider = world.tokens["member"], world.tokens["member of another matter"]
    cipher, _, _ = ciphertext(b"%PDF-1.4 engagement letter " + os.urandom(1000))
    status, body = await upload(
        base, member, cipher, "application/octet-stream", room_id=world.matter_rooms["A"]
    )
    assert status == 200, body
    for token, want in ((member, 200), (world.tokens["uploader"], 200), (outsider, 403)):
        status, data, _ = await download(base, token, body["content_uri"])
        assert status == want and (want != 200 or data == cipher), (want, status)

    media1 = topo.synapse_log("media1")
    assert served(media1, "/_matrix/media/v3/upload") >= 3
    assert served(media1, "/_matrix/client/v1/media/download/") >= 1
    for name in ("main", "client1", "sync1", "background1"):
        assert served(topo.synapse_log(name), "/media/") == 0, name
    # The main process holds no media repository at all: a file asked of it directly is not
    # there (enable_media_repo: false), so nothing reaches media but through the gateway.
    server_name, media_id = body["content_uri"].removeprefix("mxc://").split("/")
    status, _ = await request(
        topo.process_url("main"),
        "GET",
        f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
        member,
    )
    assert status == 404


async def audited(firm: WorkersFirm, event_ids: list[str]) -> dict[str, list[str]]:
    rows = await firm.db.fetch(
        "SELECT event_id, source FROM audit_record WHERE kind = 'event' AND event_id = ANY($1)",
        event_ids,
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["event_id"], []).append(row["source"])
    return found


async def send(base: str, token: str, room: str, n: int) -> str:
    """An end-to-end-encrypted message as a client sends it (its ciphertext is opaque here)."""
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": secrets.token_urlsafe(32),
        "session_id": secrets.token_urlsafe(32),
        "device_id": "WORKERTEST",
        "ciphertext": secrets.token_urlsafe(160 + n),
    }
    path = f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.encrypted/{secrets.token_hex(8)}"
    status, data = await request(base, "PUT", path, token, content)
    assert status == 200, data
    return str(data["event_id"])


async def test_transactions_from_background1_and_nothing_lost_when_workers_die(
    wfirm: WorkersFirm,
) -> None:
    """background1 alone sends the appservice transactions: while it is down the bridge gets no
    event, though clients go on sending; restarted, it delivers every one, and the audit records
    each exactly once (the gap fill at the bridge's next start finds nothing missing). sync1 dies
    at the same time: a client's sync from before the crash gets every message sent meanwhile."""
    topo = wfirm.topology
    await wfirm.person(1, "pat", "partner")
    await wfirm.person(4, "cal", "client", attorneys=[wfirm.pid(1)])
    await wfirm.matter(10, clients=[4], responsible_partner=1)
    room = str((await wfirm.wait_synced("matter", 10))["room_id"])
    from .test_workers_module import as_token_of

    pat = await as_token_of(wfirm, wfirm.who("pat"))
    cal = await as_token_of(wfirm, wfirm.who("cal"))
    base = topo.clients_url

    first = await send(base, pat, room, 0)
    await eventually(lambda: _all_audited(wfirm, [first]), timeout=30)
    sync_filter = json.dumps({"room": {"rooms": [room], "timeline": {"limit": 50}}})
    status, synced = await request(
        base, "GET", f"/_matrix/client/v3/sync?filter={quote(sync_filter)}&timeout=0", cal
    )
    assert status == 200, synced
    since = synced["next_batch"]

    topo.kill_worker("background1")
    topo.kill_worker("sync1")
    during = [await send(base, pat, room, n) for n in range(1, 6)]
    await asyncio.sleep(3)  # time enough for any other process to have sent them
    assert await audited(wfirm, during) == {}, "a process other than background1 sent them"
    await asyncio.gather(topo.start_worker("background1"), topo.start_worker("sync1"))
    # Synapse's appservice sender catches up from its stored position when the next event
    # arrives (not at start-up): with it, everything missed goes out.
    after = await send(base, pat, room, 6)
    await eventually(lambda: _all_audited(wfirm, [*during, after]), timeout=60, interval=0.25)
    path = f"/_matrix/client/v3/sync?filter={quote(sync_filter)}&since={since}&timeout=0"
    status, synced = await request(base, "GET", path, cal)
    assert status == 200, synced
    got = [e["event_id"] for e in synced["rooms"]["join"][room]["timeline"]["events"]]
    assert [e for e in got if e in during] == during  # all of them, in order

    # The bridge restarts: its gap fill reads the room again and adds nothing.
    await topo.restart_bridge()
    found = await audited(wfirm, [first, *during, after])
    assert found == {e: ["txn"] for e in [first, *during, after]}
    verify = subprocess.run(
        [sys.executable, "-m", "bridge.audit", "-c", str(topo.bridge_config_path),
         "-r", str(topo.reg_path), "verify", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True, verify.stdout


async def _all_audited(firm: WorkersFirm, event_ids: list[str]) -> bool:
    return len(await audited(firm, event_ids)) == len(event_ids)
