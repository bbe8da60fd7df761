"""bench/load.py: the whole system under load, on one Synapse process and on the worker topology,
side by side in one run (bridge.devtools.topology: the same nginx, bridge, gateway, PostgreSQL
and homeserver module in both; see bench/README.md).

Each topology in turn: start it, provision a firm through the signed API, log every person in,
run each one's initial sync, then every person holds /sync open through the clients' address
while a sender posts `--rate` encrypted messages a second into matter rooms for `--duration`
seconds. Measured over that window: each process's CPU, the delivery latency of every message to
every other member of its room (p50/p95), the bridge's CPU as a ratio to Synapse's.

The issue's scale (1,000 clients, 20 messages a second, 5 minutes) is the default; on a small
shared machine run a fraction of it with the same messages per person (bench/README.md says how
the figures scale up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from common import BenchError, build_firm, log
from harness import cpu_seconds, machine_info, percentiles_ms, write_results
from load_clients import Clients, Person, settle
from provision_steps import send_all

from bridge import registration as reg
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.topology import Topology

SYNAPSE = ("main", "client1", "sync1", "media1", "background1")


async def postgres_backends(topo: Topology) -> list[int]:
    """The PostgreSQL backends serving this topology's two databases (their CPU is ours)."""
    conn = await asyncpg.connect(topo.pg_dsn + "/postgres")
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1)",
            [topo.synapse_db, topo.bridge_db],
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            # nginx's work is in its worker process, a child of the one started.
            out[name] = cpu_seconds(pid, children=name == "nginx")
        except psutil.NoSuchProcess:
            continue
    return out


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


async def provision(topo: Topology, people: int, matters: int, seed: int) -> tuple[Any, set[str]]:
    """The firm, provisioned and converged; and the rooms of its closed matters (read-only:
    nobody sends there)."""
    firm = build_firm(people, matters, random.Random(seed))
    api = ProvisioningClient(topo.bridge_url, topo.provisioning_secret)
    try:
        began = time.monotonic()
        # In waves: nobody is sent before the people they name (supervisor, attorneys).
        done: set[int] = set()
        while len(done) < len(firm.people):
            wave = [
                p
                for p in firm.people
                if p.wp_id not in done
                and {*p.attorneys, p.supervisor or p.wp_id} <= done | {p.wp_id}
            ]
            await send_all(api, [("person", p.wp_id, p.body()) for p in wave], 8)
            done |= {p.wp_id for p in wave}
        await send_all(api, [("matter", m.wp_id, m.body()) for m in firm.matters], 8)
        keys = [("person", p.wp_id) for p in firm.people] + [
            ("matter", m.wp_id) for m in firm.matters
        ]
        deadline = time.monotonic() + 1800
        for kind, wp_id in keys:
            while True:
                get = api.get_matter if kind == "matter" else api.get_person
                status, view = await get(wp_id)
                if status == 200 and view["sync"]["state"] == "synced":
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{kind} {wp_id} did not converge: {view}")
                await asyncio.sleep(0.5)
        log(f"  provisioned {people} people, {matters} matters in {time.monotonic() - began:.0f} s")
        closed = set()
        for m in firm.matters:
            if m.closed:
                status, view = await api.get_matter(m.wp_id)
                closed.add(view["room_id"])
    finally:
        await api.close()
    return firm, closed


async def run_one(kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    log(f"{kind}: starting the topology")
    topo = Topology(
        work / kind,
        workers=kind == "workers",
        synapse_log_level="WARNING",
        cp_max=5,
        nginx_connections=1024 + 8 * args.clients,
        bridge={"logging.level": args.bridge_log_level},
    )
    phases: dict[str, float] = {}
    began = time.monotonic()
    await topo.start()
    phases["start_s"] = round(time.monotonic() - began, 1)
    try:
        began = time.monotonic()
        firm, closed = await provision(topo, args.clients, args.matters, args.seed)
        phases["provision_s"] = round(time.monotonic() - began, 1)
        domain = topo.server_name
        people = [Person(f"@{p.login}:{domain}") for p in firm.people]
        clients = Clients(topo.clients_url, people)
        try:
            as_token = reg.load(topo.reg_path).as_token
            began = time.monotonic()
            await clients.login_all(topo.homeserver_url, as_token)
            phases["logins_s"] = round(time.monotonic() - began, 1)
            began = time.monotonic()
            await clients.initial_syncs()
            phases["initial_syncs_s"] = round(time.monotonic() - began, 1)
            log(f"  initial syncs of {len(people)} clients in {phases['initial_syncs_s']:.0f} s")
            members: dict[str, list[Person]] = {}
            for p in people:
                for room in p.rooms:
                    members.setdefault(room, []).append(p)
            # Rooms where someone else would receive a message.
            members = {r: m for r, m in members.items() if len(m) >= 2 and r not in closed}
            tasks = clients.start_syncing()
            await settle(clients, args.settle)
            result = await measure(topo, clients, members, args)
            await clients.stop(tasks)
        finally:
            await clients.close()
        result["rooms_with_messages"] = len(members)
        result["people"] = len(people)
        result["phases"] = phases
        return result
    finally:
        await topo.stop()


async def measure(
    topo: Topology, clients: Clients, members: dict[str, list[Person]], args: argparse.Namespace
) -> dict[str, Any]:
    pids = topo.pids()
    pg = {f"pg{pid}": pid for pid in await postgres_backends(topo)}
    me = {"load generator": os.getpid()}
    before = cpu_of(pids | pg | me)
    busy_before = machine_busy()
    load_before = [round(x, 2) for x in os.getloadavg()]
    d = clients.deliveries
    d.measuring = True
    began = time.monotonic()
    log(f"  measuring: {args.rate} messages/s for {args.duration:.0f} s")
    sent = await clients.send_at_rate(args.rate, args.duration, members)
    sending = time.monotonic() - began
    # The last messages reach their syncs (bounded: a lost delivery shows as fewer deliveries).
    deadline = time.monotonic() + args.drain
    while len(d.latencies) < d.expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    wall = time.monotonic() - began
    d.measuring = False
    after = cpu_of(pids | pg | me)
    busy = machine_busy() - busy_before
    cpu = {k: round(after[k] - before[k], 2) for k in after if k in before}
    synapse = sum(v for k, v in cpu.items() if k in SYNAPSE)
    postgres = sum(v for k, v in cpu.items() if k.startswith("pg"))
    ours = sum(cpu.values())
    per_process = {k: v for k, v in cpu.items() if not k.startswith("pg")}
    per_process["postgres (this run's backends)"] = round(postgres, 2)
    lat = sorted(d.latencies)
    return {
        "wall_s": round(wall, 1),
        "sending_s": round(sending, 1),
        "loadavg_window": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "messages_sent": sent,
        "send_errors": d.send_errors,
        "sync_errors": d.sync_errors,
        "errors": d.errors,
        "syncs_answered": d.syncs,
        "deliveries": len(d.latencies),
        "deliveries_expected": d.expected,
        "deliveries_expected_of_acknowledged_sends": d.expected_of_acknowledged,
        "deliveries_missing": d.expected - len(d.latencies),
        # Late deliveries stop counting at the window's end: with some missing, the delivered
        # ones' percentiles flatter; this one counts every missing delivery as the slowest.
        "delivery_p95_ms_missing_as_slowest": (
            None
            if not d.expected
            else "missing"
            if int(0.95 * d.expected) >= len(lat)
            else round(lat[int(0.95 * d.expected)] * 1000, 1)
        ),
        "delivery_latency": percentiles_ms(d.latencies),
        "send_latency": percentiles_ms(d.send_latencies),
        "cpu_s": per_process,
        "cpu_share_of_one_core": {k: round(v / wall, 3) for k, v in per_process.items()},
        "synapse_cpu_s": round(synapse, 2),
        "bridge_over_synapse_cpu": round(cpu.get("bridge", 0.0) / synapse, 3) if synapse else None,
        "others_cpu_s": round(busy - ours, 1),
        "machine_cpu_s_available": round(wall * (os.cpu_count() or 1), 1),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for kind, r in results.items():
        lat = r["delivery_latency"]
        lines.append(
            f"{kind:<8} sent {r['messages_sent']} in {r['wall_s']} s, {r['deliveries']} deliveries"
            f" (of {r['deliveries_expected']}), p50 {lat.get('p50_ms')} ms,"
            f" p95 {lat.get('p95_ms')} ms; bridge/Synapse CPU {r['bridge_over_synapse_cpu']}"
        )
        if r["send_errors"] or r["deliveries_missing"]:
            lines.append(
                f"         send errors {r['send_errors']}, deliveries missing"
                f" {r['deliveries_missing']}: {r['errors']}"
            )
        shares = ", ".join(f"{k} {v:.0%}" for k, v in r["cpu_share_of_one_core"].items())
        lines.append(f"         CPU (share of one core): {shares}")
        lines.append(
            f"         others on the machine: {r['others_cpu_s']} CPU s"
            f" of {r['machine_cpu_s_available']}"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        work = args.keep or Path(tmp)
        for kind in args.topology:
            results[kind] = await run_one(kind, args, work)
            log(table({kind: results[kind]}))
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = write_results(
        "load",
        {
            "argv": sys.argv,
            "machine": info,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": results,
        },
        args.out,
    )
    print(table(results))
    print(f"results: {out}")
    failed = [
        k
        for k, r in results.items()
        if r["send_errors"] or r["deliveries"] != r["deliveries_expected"]
    ]
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=1000, help="people, each a syncing client")
    p.add_argument("--matters", type=int, help="matters (default: half the people)")
    p.add_argument("--rate", type=float, default=20, help="encrypted messages a second")
    p.add_argument("--duration", type=float, default=300, help="seconds measured")
    p.add_argument("--settle", type=float, default=10, help="seconds of idle syncing first")
    p.add_argument(
        "--drain",
        type=float,
        default=15,
        help="seconds after the last send for the last deliveries (then missing ones count)",
    )
    p.add_argument(
        "--topology",
        nargs="+",
        choices=("one", "workers"),
        default=["one", "workers"],
        help="which to run, in this order",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bridge-log-level", default="INFO")
    p.add_argument("--out", type=Path)
    p.add_argument("--keep", type=Path, help="run in this folder and keep its logs")
    args = p.parse_args()
    args.matters = args.matters or max(2, args.clients // 2)
    try:
        return asyncio.run(main_async(args))
    except BenchError as e:
        log(f"failed: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
