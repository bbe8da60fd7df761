"""Benchmark: the bridge's CPU to track unread messages for notices (issue 13), as a ratio to
Synapse's CPU for the same load.

    .venv/bin/python bench/notify.py [--people 1000 --rooms 2000 --rate 50 --seconds 60
                                      --delay 10 --db sqlite|postgres]

What one run does:

1. Starts a fresh Synapse (log level WARNING, SQLite, the firm's policy module deciding every
   event as on a firm's homeserver) and the bridge as a separate process
   (`python -m bridge`), with e-mail notices on: `wordpress.notice_url` names a stub in this
   process that answers every notice `{"status": "sent"}` and counts them.
2. Provisions `--people` people through the signed API (the firm's even shape, `build_firm`) and
   waits until the bridge has made their accounts; then `--rooms` encrypted two-person rooms
   between them (each person in about `2 * rooms / people`), made directly as the people.
3. Two phases of the same load, side by side: `--rate` messages a second for `--seconds`
   seconds, each an `m.room.encrypted` event (random ciphertext) from a random member of a
   random room, nobody reading; with notices on (windows open, the homeserver is asked for the
   notifications of each person whose window is due `--delay` seconds after their first
   message, notices go to the stub), then with the bridge restarted without `notice_url` (the
   notice worker off: the appservice, the audit trail and the media index still see every
   event). Each phase measures the CPU seconds of the bridge process and of Synapse.

Figures: the bridge's CPU over Synapse's in each phase, and the notices' share: (bridge CPU
with notices − without) / Synapse CPU with notices. Results go to bench/results/notify-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import (
    DOMAIN,
    AsClient,
    BenchError,
    PersonSpec,
    bounded,
    log,
    module_config,
    synapse_pid,
    wait_until,
)
from harness import (
    bridge_config,
    cpu_seconds,
    create_database,
    drop_database,
    free_ports,
    machine_info,
    wait_bridge_up,
    write_config,
    write_registration,
    write_results,
)

from bridge.core.model import Role
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess
from bridge.devtools.synapse import SynapseServer


def firm_people(n: int) -> list[PersonSpec]:
    """20% partners, 30% associates (each with a supervising partner), 10% paralegals, 40%
    clients (each with an attorney): everyone has someone the role table lets them talk to."""
    shares = ((Role.PARTNER, 0.2), (Role.ASSOCIATE, 0.3), (Role.PARALEGAL, 0.1))
    people: list[PersonSpec] = []
    partners: list[int] = []
    for role, share in (*shares, (Role.CLIENT, 1.0)):
        count = n - len(people) if role == Role.CLIENT else max(1, round(n * share))
        for k in range(count):
            wp_id = len(people) + 1
            extra: dict[str, Any] = {}
            if role in (Role.ASSOCIATE, Role.PARALEGAL, Role.CLIENT):
                chosen = partners[wp_id % len(partners)]
                extra = (
                    {"supervisor": chosen} if role == Role.ASSOCIATE else {"attorneys": (chosen,)}
                )
            login = f"{role.value}{k:05d}"
            people.append(PersonSpec(wp_id, login, f"{role.value.title()} {k:05d}", role, **extra))
            if role == Role.PARTNER:
                partners.append(wp_id)
    return people


def room_pairs(people: list[PersonSpec], n: int, rng: random.Random) -> list[tuple[int, int]]:
    """Two people who may talk, for each of n rooms: everyone in about 2n/len(people) rooms."""
    partners = [p.wp_id for p in people if p.role == Role.PARTNER]
    pairs = []
    for i in range(n):
        p = people[i % len(people)]
        if p.role == Role.PARTNER:
            other = rng.choice([q for q in partners if q != p.wp_id])
        elif p.role == Role.ASSOCIATE:
            other = p.supervisor  # type: ignore[assignment]
        else:
            other = p.attorneys[0]
        pairs.append((p.wp_id, other))
    return pairs


class NoticeStub:
    """WordPress's notice route, answering every notice as sent."""

    def __init__(self) -> None:
        self.notices: set[str] = set()
        self.calls = 0

    async def notice(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        self.notices.add(body["notice_id"])
        return web.json_response({"status": "sent", "duplicate": False})


def ciphertext() -> dict[str, Any]:
    """An m.room.encrypted content of the usual size (the bridge never decrypts it)."""
    return {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": base64.b64encode(os.urandom(240)).decode().rstrip("="),
        "device_id": "BENCHDEVICE",
        "sender_key": base64.b64encode(os.urandom(32)).decode().rstrip("="),
        "session_id": base64.b64encode(os.urandom(32)).decode().rstrip("="),
    }


async def load(
    hs: AsClient, rooms: list[tuple[str, tuple[str, str]]], rate: float, seconds: float
) -> int:
    """`rate` messages a second for `seconds`, paced from the start (not from each answer), at
    most 64 in flight: when Synapse cannot keep up the rate drops, and the phase reports the
    rate it reached (the same messages are sent either way, so the CPU figures compare)."""
    rng = random.Random(7)
    start = time.monotonic()
    slots = asyncio.Semaphore(64)
    tasks = []
    total = int(rate * seconds)

    async def one(room_id: str, sender: str) -> None:
        try:
            await hs.send(room_id, "m.room.encrypted", secrets.token_hex(8), ciphertext(), sender)
        finally:
            slots.release()

    for i in range(total):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await slots.acquire()
        room_id, members = rooms[rng.randrange(len(rooms))]
        tasks.append(asyncio.create_task(one(room_id, members[rng.randrange(2)])))
    await asyncio.gather(*tasks)
    return total


async def phase(
    name: str,
    synapse: SynapseServer,
    bridge: BridgeProcess,
    hs: AsClient,
    rooms: list[tuple[str, tuple[str, str]]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    await asyncio.sleep(3)  # let the start-up settle
    spid, bpid = synapse_pid(synapse), bridge.proc.pid  # type: ignore[union-attr]
    load0 = [round(x, 2) for x in os.getloadavg()]
    s0, b0, t0 = cpu_seconds(spid), cpu_seconds(bpid), time.monotonic()
    sent = await load(hs, rooms, args.rate, args.seconds)
    # The windows of the last messages fall due after the load: their checks are the load's.
    await asyncio.sleep(args.delay + 3)
    s1, b1, t1 = cpu_seconds(spid), cpu_seconds(bpid), time.monotonic()
    result = {
        "phase": name,
        "messages": sent,
        "rate_reached": round(sent / max(t1 - t0 - args.delay - 3, 1e-9), 1),
        "wall_seconds": round(t1 - t0, 1),
        "synapse_cpu_seconds": round(s1 - s0, 2),
        "bridge_cpu_seconds": round(b1 - b0, 2),
        "bridge_over_synapse": round((b1 - b0) / max(s1 - s0, 1e-9), 4),
        # The machine's load at the phase's start and end (others' work inflates CPU seconds).
        "loadavg": [load0, [round(x, 2) for x in os.getloadavg()]],
    }
    log(f"{name}: {json.dumps(result)}")
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()  # at the start: its load average is the run's, not the end's
    work = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    bridge_port, stub_port, hs_port = free_ports(3)
    db_name = f"bench_notify_{secrets.token_hex(4)}"
    db_uri = (
        await create_database(db_name) if args.db == "postgres" else f"sqlite:{work / 'bridge.db'}"
    )
    secret, module_secret = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    stub = NoticeStub()
    app = web.Application()
    app.router.add_post("/wp-json/firm-bridge/v1/notices", stub.notice)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", stub_port).start()
    notify_on = {
        "delay": args.delay,
        "poll_interval": 1,
    }
    data = bridge_config(
        bridge_port,
        db_uri,
        secret,
        module_secret,
        notify=notify_on,
        wordpress={"notice_url": f"http://127.0.0.1:{stub_port}/wp-json/firm-bridge/v1/notices"},
        reconciler={"workers": 8, "poll_interval": 0.5, "drift_interval": 86400},
    )
    config_path = work / "config.json"
    write_config(config_path, data)
    registration = write_registration(config_path, data, work / "registration.yaml")
    synapse = SynapseServer(
        work / "synapse",
        server_name=DOMAIN,
        registration_paths=[work / "registration.yaml"],
        port=hs_port,
        # The firm's policy module: the bridge names people through it, and it decides every
        # event, as on a firm's homeserver.
        extra_config=module_config(bridge_port, module_secret),
    )
    synapse.start()
    data["homeserver"]["address"] = synapse.base_url
    write_config(config_path, data)
    bridge = BridgeProcess(config_path, work / "registration.yaml", work / "bridge.log")
    bridge.start()
    api = ProvisioningClient(f"http://127.0.0.1:{bridge_port}", secret)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    hs = AsClient(session, synapse.base_url, registration.as_token)
    try:
        await wait_bridge_up(api, bridge, 60)
        people = firm_people(args.people)
        log(f"provisioning {len(people)} people")

        async def put(p: Any) -> None:
            status, body = await api.put_person(p.wp_id, p.body())
            if status != 200:
                raise BenchError(f"PUT person {p.wp_id}: {status} {body}")

        await bounded(8, people, put)

        waiting = list(people)

        async def registered() -> bool:
            while waiting:
                status, body = await api.get_person(waiting[0].wp_id)
                if status != 200 or body["sync"]["state"] != "synced":
                    return False
                waiting.pop(0)
            return True

        await wait_until(registered, 1800, "accounts made")
        mxid = {p.wp_id: f"@{p.login}:{DOMAIN}" for p in people}
        pairs = [(mxid[a], mxid[b]) for a, b in room_pairs(people, args.rooms, random.Random(2))]
        rooms: list[tuple[str, tuple[str, str]]] = []
        log(f"making {len(pairs)} rooms")

        async def make(pair: tuple[str, str]) -> None:
            a, b = pair
            body = {
                "preset": "private_chat",
                "invite": [b],
                "initial_state": [
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ],
            }
            room_id = await hs.create_room(body, a)
            await hs.join(room_id, b)
            rooms.append((room_id, pair))

        await bounded(8, pairs, make)
        log("load with notices on")
        on = await phase("notices on", synapse, bridge, hs, rooms, args)
        windows_notices = len(stub.notices)
        bridge.stop()
        data["wordpress"]["notice_url"] = None
        write_config(config_path, data)
        bridge.start()
        await bridge_up(api, bridge)
        log("load with notices off")
        off = await phase("notices off", synapse, bridge, hs, rooms, args)
        share = (on["bridge_cpu_seconds"] - off["bridge_cpu_seconds"]) / max(
            on["synapse_cpu_seconds"], 1e-9
        )
        return {
            "benchmark": "notify",
            "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
            "machine": machine,
            "people": len(people),
            "rooms": len(rooms),
            "rate_per_second": args.rate,
            "seconds": args.seconds,
            "delay_seconds": args.delay,
            "db": args.db,
            "phases": [on, off],
            "notices_sent": windows_notices,
            "notice_calls": stub.calls,
            "notices_share_of_synapse_cpu": round(share, 4),
        }
    except BaseException:
        log(f"bridge log tail:\n{bridge.log_tail(40)}")
        args.keep = True
        raise
    finally:
        await session.close()
        await api.close()
        bridge.stop()
        synapse.stop()
        await runner.cleanup()
        if args.db == "postgres":
            await drop_database(db_name)
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


async def bridge_up(api: ProvisioningClient, bridge: BridgeProcess) -> None:
    """The restarted bridge answers (harness.wait_bridge_up asks for a person that must not
    exist, and these do)."""
    mark = bridge.log_path.stat().st_size

    async def up() -> bool:
        if not bridge.alive():
            raise BenchError(f"the bridge exited:\n{bridge.log_tail()}")
        with bridge.log_path.open() as f:
            f.seek(mark)
            return "answered the appservice ping" in f.read()

    await wait_until(up, 120, "the bridge again", interval=0.2)


async def cancellable(work: Any) -> Any:
    """SIGTERM and SIGINT cancel the run, so that its clean-up stops Synapse and the bridge."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--people", type=int, default=1000)
    p.add_argument("--rooms", type=int, default=2000)
    p.add_argument("--rate", type=float, default=50, help="messages a second")
    p.add_argument("--seconds", type=float, default=60, help="of load per phase")
    p.add_argument("--delay", type=float, default=10, help="notify.delay, seconds")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(cancellable(run(args)))
    path = write_results("notify", result, args.out)
    on, off = result["phases"]
    log(
        f"bridge/Synapse CPU: {on['bridge_over_synapse']} with notices,"
        f" {off['bridge_over_synapse']} without; the notices' share of Synapse's CPU:"
        f" {result['notices_share_of_synapse_cpu']} ({result['notices_sent']} notices); {path}"
    )


if __name__ == "__main__":
    main()
