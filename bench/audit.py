"""Benchmark: the audit trail's ingestion throughput into PostgreSQL, its memory over a long run,
and the time to verify the chain.

    .venv/bin/python bench/audit.py [--events 1000000] [--txn-size 100]
    .venv/bin/python bench/audit.py record      # re-record bench/data/audit-transactions.json

What one run does, side by side in the same run:

1. Starts the bridge as a separate process pinned to one core (CPU 0), on a fresh PostgreSQL
   database, twice: once as shipped, and once with the audit sink removed (the appservice
   transaction path alone: auth, JSON, dedupe by transaction id, the other sinks). No homeserver is reachable;
   the bridge keeps retrying its ping in the background, as it would.
2. Replays recorded transactions (bench/data/audit-transactions.json, recorded from a real
   Synapse: Megolm-encrypted messages from real device clients, reactions, membership and state)
   to it, one PUT at a time like Synapse, each event with a fresh event id, across 50 rooms,
   until --events events were sent; with the audit, until all of them are sealed in the chain.
3. Samples the bridge process's resident memory every second, and measures the CPU time of the
   bridge and of every PostgreSQL process on the machine over the run (the bridge is pinned to
   one core; PostgreSQL runs beside it, so its share is reported rather than hidden).
4. Runs `python -m bridge.audit verify` on the chain and times it (and its peak memory).

Results go to bench/results/audit-<time>.json. PostgreSQL: FIRM_BENCH_PG
(default postgres://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from common import AsClient
from harness import create_database, drop_database, free_ports, machine_info

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "audit-transactions.json"
RESULTS = ROOT / "bench" / "results"
DOMAIN = "firm.test"
# The child process (the bridge) gets the same token through its environment.
HS_TOKEN = os.environ.setdefault("FIRM_BENCH_HS_TOKEN", secrets.token_urlsafe(32))


def free_port() -> int:
    return free_ports(1)[0]


def bridge_config(work: Path, db_uri: str, port: int) -> Path:
    from ruamel.yaml import YAML

    data = {
        "homeserver": {
            "address": f"http://127.0.0.1:{free_port()}",
            "domain": DOMAIN,
            "public_address": "http://127.0.0.1:2",  # no clients in this benchmark
        },
        "homeserver_module": {"shared_secret": secrets.token_urlsafe(48)},
        "appservice": {"address": f"http://127.0.0.1:{port}", "port": port},
        "database": {"uri": db_uri, "max_connections": 4},
        "provisioning": {"shared_secret": secrets.token_urlsafe(48)},
        "reconciler": {"drift_interval": 86400},
        "logging": {"level": "WARNING"},
        "audit": {"signing_key": str(work / "audit-signing.key")},
    }
    path = work / "config.yaml"
    with path.open("w") as f:
        YAML().dump(data, f)
    return path


# --- the bridge side (child process) ---------------------------------------------------------


async def serve(config_path: Path, audit: bool) -> None:
    from bridge import registration as reg
    from bridge.app import Bridge, setup_logging
    from bridge.config import load

    config = load(config_path)
    setup_logging(config)
    bridge = Bridge(config, reg.Registration("unused-as-token", HS_TOKEN, "firmbridge"))
    if not audit:
        bridge.appservice.sinks.remove(bridge.audit.sink)
    await bridge.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bridge.stop()


# --- the load side ---------------------------------------------------------------------------


def templates() -> list[dict]:
    txns = json.loads(DATA.read_text())
    events = [e for t in txns for e in t["events"]]
    if not events:
        raise SystemExit(f"{DATA} holds no events")
    return events


async def wait_listening(port: int, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("the bridge exited at start-up")
            try:
                async with s.post(
                    f"http://127.0.0.1:{port}/_matrix/app/v1/ping",
                    headers={"Authorization": f"Bearer {HS_TOKEN}"},
                    json={},
                ) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the bridge did not start")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process (backends, WAL writer, checkpointer)."""
    found: dict[int, float] = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] in ("postgres", "postmaster") and p.info["cpu_times"] is not None:
            t = p.info["cpu_times"]
            found[p.pid] = t.user + t.system
    return found


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that started during the run counts in full; one that ended is not seen.
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def run_one(
    mode: str, events: int, txn_size: int, work: Path, keep_db: bool
) -> dict[str, Any]:
    name = f"firm_bench_audit_{mode}_{uuid.uuid4().hex[:6]}"
    db_uri = await create_database(name)
    port = free_port()
    config = bridge_config(work, db_uri, port)
    log = (work / f"bridge-{mode}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", str(config), mode],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, int, int]] = []  # (seconds, events sent, rss bytes)
    try:
        await wait_listening(port, proc)
        shapes = templates()
        rooms = [f"!bench{r:02d}{uuid.uuid4().hex[:8]}:{DOMAIN}" for r in range(50)]
        sent = 0
        start = time.monotonic()
        cpu0 = ps.cpu_times()
        pg0 = postgres_cpu()
        next_sample = start
        url = f"http://127.0.0.1:{port}/_matrix/app/v1/transactions/"
        headers = {"Authorization": f"Bearer {HS_TOKEN}", "Content-Type": "application/json"}
        base_ts = int(time.time() * 1000) - events
        async with aiohttp.ClientSession() as s:
            t = 0
            while sent < events:
                batch = []
                for _ in range(min(txn_size, events - sent)):
                    e = dict(shapes[sent % len(shapes)])
                    e["event_id"] = f"${mode}{sent:09d}{uuid.uuid4().hex[:12]}"
                    e["room_id"] = rooms[sent % len(rooms)]
                    e["origin_server_ts"] = base_ts + sent
                    batch.append(e)
                    sent += 1
                body = json.dumps({"events": batch}).encode()
                async with s.put(f"{url}{mode}{t}", data=body, headers=headers) as r:
                    assert r.status == 200, await r.text()
                t += 1
                now = time.monotonic()
                if now >= next_sample:
                    samples.append((round(now - start, 1), sent, ps.memory_info().rss))
                    next_sample = now + 1
            sent_at = time.monotonic() - start
        sealed = events
        if mode == "audit":
            conn = await asyncpg.connect(db_uri)
            try:
                while True:
                    sealed = await conn.fetchval("SELECT seq FROM audit_head WHERE id = 1")
                    now = time.monotonic()
                    if now >= next_sample:
                        samples.append((round(now - start, 1), sent, ps.memory_info().rss))
                        next_sample = now + 1
                    if sealed >= events:
                        break
                    if proc.poll() is not None:
                        raise SystemExit("the bridge died")
                    await asyncio.sleep(0.05)
            finally:
                await conn.close()
        elapsed = time.monotonic() - start
        cpu1 = ps.cpu_times()
        pg_cpu = cpu_since(pg0, postgres_cpu())
        samples.append((round(elapsed, 1), sent, ps.memory_info().rss))
        result: dict[str, Any] = {
            "mode": mode,
            "events": events,
            "txn_size": txn_size,
            "seconds": round(elapsed, 2),
            "sent_seconds": round(sent_at, 2),
            "events_per_second": round(events / elapsed),
            "bridge_cpu_seconds": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
            "postgres_cpu_seconds": round(pg_cpu, 2),
            "rss_mb": [(s0, n, round(rss / 2**20, 1)) for s0, n, rss in samples],
        }
        if mode == "audit":
            result["verify"] = verify(config)
        return result
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if not keep_db:
            await drop_database(name)


def verify(config: Path) -> dict[str, Any]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.audit", "-c", str(config), "verify"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.2)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return {
        "seconds": round(time.monotonic() - start, 2),
        "exit": proc.returncode,
        "output": out.strip().splitlines()[-1] if out.strip() else "",
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def flatness(rss: list[tuple[float, int, float]]) -> dict[str, Any]:
    """Memory after the first tenth of the run against the end: flat means no growth with
    the number of events."""
    if len(rss) < 4:
        return {}
    tenth = rss[len(rss) // 10]
    return {
        "rss_at_10pct_mb": tenth[2],
        "rss_end_mb": rss[-1][2],
        "rss_max_mb": max(r[2] for r in rss),
        "growth_mb": round(rss[-1][2] - tenth[2], 1),
    }


async def main_bench(args: argparse.Namespace) -> None:
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    results: dict[str, Any] = {"machine": machine_info()}
    for mode in ("baseline", "audit"):
        print(f"{mode}: sending {args.events} events ...", flush=True)
        r = await run_one(mode, args.events, args.txn_size, work, args.keep_db)
        r["memory"] = flatness(r["rss_mb"])
        results[mode] = r
        print(
            f"  {r['events_per_second']} events/s over {r['seconds']} s;"
            f" bridge CPU {r['bridge_cpu_seconds']} s, PostgreSQL CPU {r['postgres_cpu_seconds']} s;"
            f" memory {r['memory']}",
            flush=True,
        )
    a, b = results["audit"], results["baseline"]
    summary = {
        "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
        "audit_events_per_second": a["events_per_second"],
        "baseline_events_per_second": b["events_per_second"],
        "ratio_audit_to_baseline": round(a["events_per_second"] / b["events_per_second"], 3),
        "target_events_per_second": 5000,
        "audit_bridge_cpu_us_per_event": round(a["bridge_cpu_seconds"] / a["events"] * 1e6, 1),
        "audit_postgres_cpu_us_per_event": round(a["postgres_cpu_seconds"] / a["events"] * 1e6, 1),
        # If the bridge and PostgreSQL had to share one core: events per CPU-second of both.
        "audit_events_per_cpu_second_bridge_and_postgres": round(
            a["events"] / (a["bridge_cpu_seconds"] + a["postgres_cpu_seconds"])
        ),
        "verify_seconds": a["verify"]["seconds"],
        "verify_output": a["verify"]["output"],
        "verify_peak_rss_mb": a["verify"]["peak_rss_mb"],
        "memory": a["memory"],
        "work_dir": str(work),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    results["summary"] = summary
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"audit-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"results: {out}")


# --- recording real transactions -------------------------------------------------------------


async def record() -> None:
    """Record the transactions a real Synapse sends: encrypted messages from real device
    clients, reactions, room creation and membership."""
    import tempfile

    from aiohttp import web

    sys.path.insert(0, str(ROOT / "tests"))
    from e2ee_client import DeviceClient  # type: ignore[import-not-found]

    from bridge import registration as reg
    from bridge.config import parse
    from bridge.devtools.synapse import SynapseServer

    work = Path(tempfile.mkdtemp(prefix="audit-record-"))
    port = free_port()
    cfg = parse(
        {
            "homeserver": {
                "address": "http://127.0.0.1:1",
                "domain": DOMAIN,
                "public_address": "http://127.0.0.1:2",  # no clients in this benchmark
            },
            "homeserver_module": {"shared_secret": secrets.token_urlsafe(48)},
            "appservice": {"address": f"http://127.0.0.1:{port}", "port": port},
            "database": {"uri": "sqlite:unused"},
            "provisioning": {"shared_secret": secrets.token_urlsafe(48)},
        },
        work / "c.yaml",
    )
    reg_path = work / "registration.yaml"
    reg.write(cfg, reg_path)
    registration = reg.load(reg_path)
    captured: list[dict] = []

    async def txn(request: web.Request) -> web.Response:
        body = await request.json()
        captured.append({"events": body.get("events", [])})
        return web.json_response({})

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_put("/_matrix/app/v1/transactions/{txn}", txn)
    app.router.add_post("/_matrix/app/v1/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hs = SynapseServer(work / "synapse", server_name=DOMAIN, registration_paths=[reg_path])
    hs.start()
    try:
        async with aiohttp.ClientSession() as s:
            hs_client = AsClient(s, hs.base_url, registration.as_token)
            users = [f"@{name}:{DOMAIN}" for name in ("attorney", "client")]
            for u in users:
                await hs_client.register(u)
            encryption = {"algorithm": "m.megolm.v1.aes-sha2"}
            room = await hs_client.create_room(
                {
                    "preset": "private_chat",
                    "invite": users,
                    "initial_state": [
                        {"type": "m.room.encryption", "state_key": "", "content": encryption}
                    ],
                }
            )
            for u in users:
                await hs_client.join(room, u)
            clients = [
                await DeviceClient.login_appservice(hs.base_url, registration.as_token, u)
                for u in users
            ]
            for c in clients:
                await c.start()
            for i in range(20):
                c = clients[i % 2]
                eid = await c.send_text(room, "x" * (40 + 37 * i))
                if i % 4 == 0:
                    reaction = {
                        "m.relates_to": {"rel_type": "m.annotation", "event_id": eid, "key": "👍"}
                    }
                    await hs_client.send(room, "m.reaction", f"r{i}", reaction, users[(i + 1) % 2])
            for c in clients:
                await c.stop()
            await asyncio.sleep(2)
    finally:
        hs.stop()
        await runner.cleanup()
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(captured, indent=1))
    n = sum(len(t["events"]) for t in captured)
    print(f"recorded {len(captured)} transactions, {n} events -> {DATA}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(Path(sys.argv[2]), sys.argv[3] == "audit"))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "record":
        asyncio.run(record())
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--txn-size", type=int, default=100)
    p.add_argument("--keep-db", action="store_true")
    asyncio.run(main_bench(p.parse_args()))


if __name__ == "__main__":
    main()
