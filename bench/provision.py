"""Provisioning benchmark: the bridge against a plain client loop, side by side in one run.

    .venv/bin/python bench/provision.py [--people 50 --matters 500 --members 4 --moves 100
                                              --concurrency 8 --db sqlite|postgres]

One run starts a fresh Synapse on loopback and the bridge as a separate process, then:

1. provision: PUTs every person and matter through the signed provisioning API (at most
   --concurrency requests in flight) and waits until every one reads sync.state == "synced";
2. move: re-assigns --moves matters from partner A to partner B and waits until they converge;
3. baseline: with the bridge stopped, a plain loop at the same concurrency does the same
   homeserver writes directly with the as_token (register, display names, createRoom with the
   reconciler's body, joins) against the same Synapse.

It measures wall time and CPU seconds (user+system, psutil, process and children) of the bridge
and of Synapse over each phase, prints a table and writes bench/results/provision-<ts>.json.
See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web
from common import (
    DOMAIN,
    AsClient,
    BenchError,
    FirmSpec,
    MatterSpec,
    build_firm,
    default_policy,
    log,
    module_config,
    synapse_pid,
)
from harness import (
    bridge_config,
    cpu_seconds,
    create_database,
    drop_database,
    free_ports,
    machine_info,
    percentiles_ms,
    start_stub_appservice,
    wait_bridge_up,
    write_config,
    write_registration,
    write_results,
)
from provision_steps import (
    baseline,
    check_moves,
    check_rooms,
    metrics_delta,
    room_shape,
    scrape_metrics,
    send_all,
    wait_synced,
)

from bridge.core.model import Role
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess
from bridge.devtools.synapse import SynapseServer

TARGET_CPU_RATIO = 0.25
TARGET_WALL_RATIO = 1.3


def provision_firm(people: int, matters: int, members: int, moves: int) -> FirmSpec:
    """Every matter room has exactly `members` people; partner A (the first) is responsible for
    at least `moves` matters, which move to partner B (the second) in the move phase."""
    return build_firm(
        people, matters, random.Random(0), room_size=members, first_partner_matters=moves
    )


def moved_matters(firm: FirmSpec, moves: int) -> tuple[int, int, list[MatterSpec]]:
    a, b = (p.wp_id for p in firm.by_role(Role.PARTNER)[:2])
    return a, b, [m for m in firm.matters if m.partner == a][:moves]


# --- CPU of the processes -----------------------------------------------------------------------


def own_cpu_seconds() -> float:
    """This process alone: its children are the bridge and Synapse, measured on their own."""
    return cpu_seconds(os.getpid(), children=False)


def pg_backends_cpu(db_name: str) -> dict[int, float]:
    """CPU of the PostgreSQL backends serving one database (the bridge's, with --db postgres)."""
    out: dict[int, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if line.startswith("postgres:") and f" {db_name} " in line:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[proc.pid] = t.user + t.system
    return out


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


@dataclass
class Meter:
    """CPU and wall clock of the bridge, Synapse and this process over one phase, and of the
    bridge's PostgreSQL backends and of everything else on the machine (others' load)."""

    pids: dict[str, int]
    pg_db: str | None = None
    start_wall: float = 0.0
    start_cpu: dict[str, float] = field(default_factory=dict)
    start_pg: dict[int, float] = field(default_factory=dict)
    start_busy: float = 0.0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def begin(self) -> None:
        self.start_cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.start_cpu["bench"] = own_cpu_seconds()
        self.start_pg = pg_backends_cpu(self.pg_db) if self.pg_db else {}
        self.start_busy = system_busy_seconds()
        self.start_wall = time.monotonic()

    def end(self) -> None:
        self.wall = time.monotonic() - self.start_wall
        busy = system_busy_seconds() - self.start_busy
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["bench"] = own_cpu_seconds()
        self.cpu = {name: now[name] - self.start_cpu[name] for name in now}
        if self.pg_db:
            pg = pg_backends_cpu(self.pg_db)
            self.cpu["bridge_db"] = sum(v - self.start_pg.get(pid, 0.0) for pid, v in pg.items())
        self.cpu["others"] = max(0.0, busy - sum(self.cpu.values()))


# --- the run ----------------------------------------------------------------------------------


def phase_record(meter: Meter, **extra: Any) -> dict[str, Any]:
    bridge_cpu = meter.cpu.get("bridge")
    syn = meter.cpu["synapse"]
    cores = os.cpu_count() or 1
    rec: dict[str, Any] = {
        "wall_s": round(meter.wall, 3),
        "synapse_cpu_s": round(syn, 3),
        "bench_cpu_s": round(meter.cpu["bench"], 3),
        "others_cpu_s": round(meter.cpu["others"], 3),
        "others_share_of_machine": round(meter.cpu["others"] / (meter.wall * cores), 3),
    }
    if bridge_cpu is not None:
        rec["bridge_cpu_s"] = round(bridge_cpu, 3)
        rec["bridge_over_synapse_cpu"] = round(bridge_cpu / syn, 4) if syn > 0 else None
        if "bridge_db" in meter.cpu:
            db_cpu = meter.cpu["bridge_db"]
            rec["bridge_db_cpu_s"] = round(db_cpu, 3)
            rec["bridge_with_db_over_synapse_cpu"] = (
                round((bridge_cpu + db_cpu) / syn, 4) if syn > 0 else None
            )
    rec.update(extra)
    return rec


async def run(args: argparse.Namespace) -> dict[str, Any]:
    firm = provision_firm(args.people, args.matters, args.members, args.moves)
    partner_a, partner_b, moved = moved_matters(firm, args.moves)
    policy = default_policy()
    work = Path(tempfile.mkdtemp(prefix="firm-bench-"))
    log(f"work dir {work}")
    result: dict[str, Any] = {
        "benchmark": "provision",
        "command": [sys.executable, *sys.argv],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": {
            "people": args.people,
            "matters": args.matters,
            "members": args.members,
            "moves": args.moves,
            "concurrency": args.concurrency,
            "db": args.db,
            "synapse_module": args.module,
            "restart_synapse_before_baseline": args.module or args.restart_synapse,
            "bridge_log_level": args.bridge_log_level,
            "reconciler_poll_interval": 0.5,
            "status_poll_interval": args.poll,
        },
        "machine": machine_info(),
        "firm": {
            "roles": {
                r.value: sum(p.role == r for p in firm.people)
                for r in (Role.PARTNER, Role.ASSOCIATE, Role.PARALEGAL, Role.CLIENT)
            },
            "privileged_matters": sum(m.privileged for m in firm.matters),
            "partner_a_matters": sum(m.partner == partner_a for m in firm.matters),
        },
    }
    pg_name: str | None = None
    server: SynapseServer | None = None
    bridge: BridgeProcess | None = None
    stub: web.AppRunner | None = None
    ok = False
    try:
        port, metrics_port = free_ports(2)
        secret = secrets.token_urlsafe(48)
        module_secret = secrets.token_urlsafe(48)
        if args.db == "postgres":
            pg_name = f"firm_bench_{uuid.uuid4().hex[:12]}"
            db_uri = await create_database(pg_name)
        else:
            db_uri = f"sqlite:{work / 'bridge.db'}"
        config_data = bridge_config(
            port,
            db_uri,
            secret,
            module_secret,
            reconciler={
                "workers": args.concurrency,
                "poll_interval": 0.5,
                "drift_interval": 10**6,
                "backoff_initial": 0.5,
                "backoff_max": 5,
            },
            metrics={"enabled": True, "hostname": "127.0.0.1", "port": metrics_port},
            logging={"level": args.bridge_log_level},
        )
        config_path = work / "bridge.yaml"
        reg_path = work / "registration.yaml"
        registration = write_registration(config_path, config_data, reg_path)

        server = SynapseServer(
            work / "synapse",
            server_name=DOMAIN,
            registration_paths=[reg_path],
            log_level="WARNING",
            extra_config=module_config(port, module_secret) if args.module else None,
        )
        log("starting Synapse")
        server.start()
        config_data["homeserver"]["address"] = server.base_url
        write_config(config_path, config_data)

        bridge = BridgeProcess(config_path, reg_path, work / "bridge.log")
        bridge_pid = bridge.start()
        pids = {"bridge": bridge_pid, "synapse": synapse_pid(server)}
        timeout = args.timeout
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            api = ProvisioningClient(f"http://127.0.0.1:{port}", secret, session=session)
            hs = AsClient(session, server.base_url, registration.as_token)
            await wait_bridge_up(api, bridge, 60)
            log(f"bridge up (pid {bridge_pid}), Synapse pid {pids['synapse']}")
            await asyncio.sleep(1)  # let start-up work settle before the first sample

            # --- phase 1: provision --------------------------------------------------------
            keys = [("person", p.wp_id) for p in firm.people] + [
                ("matter", m.wp_id) for m in firm.matters
            ]
            m0 = await scrape_metrics(session, metrics_port)
            meter = Meter(pids, pg_name)
            log(f"provision: {len(firm.people)} people, {len(firm.matters)} matters")
            meter.begin()
            lat = await send_all(
                api, [("person", p.wp_id, p.body()) for p in firm.people], args.concurrency
            )
            lat += await send_all(
                api, [("matter", m.wp_id, m.body()) for m in firm.matters], args.concurrency
            )
            sent = time.monotonic() - meter.start_wall
            log(f"  all {len(lat)} requests answered after {sent:.1f}s")
            stats = await wait_synced(
                api,
                keys,
                interval=args.poll,
                timeout=timeout,
                concurrency=args.concurrency,
                meter=meter,
            )
            m1 = await scrape_metrics(session, metrics_port)
            result["provision"] = phase_record(
                meter,
                requests_sent_s=round(sent, 3),
                put_latency=percentiles_ms(lat),
                status_polls=stats.polls,
                retrying_seen=stats.retrying_seen,
                matters_per_s=round(len(firm.matters) / meter.wall, 2),
                bridge_metrics=metrics_delta(m0, m1),
            )
            log(
                f"provision: {meter.wall:.1f}s wall, bridge {meter.cpu['bridge']:.1f}s CPU,"
                f" Synapse {meter.cpu['synapse']:.1f}s CPU"
            )
            views = stats.views
            problems = await check_rooms(hs, firm, views, args.concurrency)
            result["provision"]["check_problems"] = problems[:20]
            result["provision"]["check_ok"] = not problems
            log(f"  room check: {'ok' if not problems else f'{len(problems)} problem(s)'}")

            # --- phase 2: move -------------------------------------------------------------
            await asyncio.sleep(1)
            a, b = partner_a, partner_b
            log(f"move: {len(moved)} matters from partner {a} to partner {b}")
            m0 = await scrape_metrics(session, metrics_port)
            meter = Meter(pids, pg_name)
            meter.begin()
            lat = await send_all(
                api,
                [("matter", m.wp_id, m.body(partner=b)) for m in moved],
                args.concurrency,
            )
            sent = time.monotonic() - meter.start_wall
            stats = await wait_synced(
                api,
                [("matter", m.wp_id) for m in moved],
                interval=min(args.poll, 0.2),
                timeout=timeout,
                concurrency=args.concurrency,
                meter=meter,
            )
            m1 = await scrape_metrics(session, metrics_port)
            problems = await check_moves(hs, firm, moved, (a, b), stats.views, args.concurrency)
            result["move"] = phase_record(
                meter,
                moves=len(moved),
                requests_sent_s=round(sent, 3),
                put_latency=percentiles_ms(lat),
                status_polls=stats.polls,
                retrying_seen=stats.retrying_seen,
                bridge_metrics=metrics_delta(m0, m1),
                check_ok=not problems,
                check_problems=problems[:20],
            )
            log(
                f"move: {meter.wall:.1f}s wall, bridge {meter.cpu['bridge']:.1f}s CPU,"
                f" Synapse {meter.cpu['synapse']:.1f}s CPU;"
                f" check {'ok' if not problems else f'{len(problems)} problem(s)'}"
            )

            # --- phase 3: baseline ---------------------------------------------------------
            code = bridge.stop()
            result["bridge_exit_code"] = code
            log(f"bridge stopped (exit {code})")
            if not args.skip_baseline:
                log("baseline against the same Synapse")
                stub = await start_stub_appservice(port)
                if args.module or args.restart_synapse:
                    # The module fails closed without the bridge and refuses joins to rooms the
                    # bridge does not know: the baseline runs on the same data dir without it.
                    log("restarting Synapse (without the policy module)")
                    server.stop()
                    hs_config = json.loads(server.config_path.read_text())
                    for key in ("modules", "password_config"):
                        hs_config.pop(key, None)
                    server.config_path.write_text(json.dumps(hs_config, indent=2))
                    server.start()
                    pids["synapse"] = synapse_pid(server)
                await asyncio.sleep(2)
                meter = Meter({"synapse": pids["synapse"]})
                hs.requests = 0
                meter.begin()
                timings: dict[str, float] = {}
                rooms = await baseline(hs, policy, firm, args.concurrency, "base-", timings)
                meter.end()
                result["baseline"] = phase_record(meter, hs_requests=hs.requests, **timings)
                log(f"baseline: {meter.wall:.1f}s wall, Synapse {meter.cpu['synapse']:.1f}s CPU")

                # The baseline built its rooms as the bridge did: compare two pairs.
                shape_ok = True
                unmoved = [m for m in firm.matters if m not in moved]
                pair = [
                    next(m for m in unmoved if m.privileged is flag)
                    for flag in (True, False)
                    if any(m.privileged is flag for m in unmoved)
                ]
                for m in pair:
                    mine = room_shape(
                        await hs.state(rooms[str(m.index)]), lambda u: u.replace("@base-", "@")
                    )
                    theirs_room = views[("matter", m.wp_id)]["room_id"]
                    theirs = room_shape(await hs.state(theirs_room), lambda u: u)
                    if mine != theirs:
                        shape_ok = False
                        log(f"  room shape differs for matter {m.index}:\n    {mine}\n    {theirs}")
                result["baseline"]["same_room_shape"] = shape_ok

        prov = result["provision"]
        result["ratios"] = {
            "provision_bridge_over_synapse_cpu": prov["bridge_over_synapse_cpu"],
            "move_bridge_over_synapse_cpu": result["move"]["bridge_over_synapse_cpu"],
        }
        if "baseline" in result:
            base = result["baseline"]
            result["ratios"].update(
                provision_wall_over_baseline_wall=round(prov["wall_s"] / base["wall_s"], 3),
                provision_synapse_cpu_over_baseline_synapse_cpu=round(
                    prov["synapse_cpu_s"] / base["synapse_cpu_s"], 3
                ),
            )
        result["targets"] = {
            "bridge_over_synapse_cpu_max": TARGET_CPU_RATIO,
            "provision_wall_over_baseline_wall_max": TARGET_WALL_RATIO,
        }
        warnings = [
            ln
            for ln in (work / "bridge.log").read_text(errors="replace").splitlines()
            if " WARNING " in ln or " ERROR " in ln
        ]
        result["bridge_log_warnings"] = len(warnings)
        result["bridge_log_warning_lines"] = warnings[:20]  # ids only: the bridge logs no content
        result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        ok = True
        return result
    finally:
        if stub is not None:
            await stub.cleanup()
        if bridge is not None:
            bridge.stop()
        if server is not None:
            server.stop()
        if pg_name is not None:
            await drop_database(pg_name)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} (logs: bridge.log, synapse/homeserver.log)")


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    return "ok" if value <= target else "OVER"


def print_table(r: dict[str, Any]) -> None:
    p = r["params"]
    print()
    print(
        f"provision benchmark: {p['people']} people, {p['matters']} matters x {p['members']}"
        f" members, {p['moves']} moves, concurrency {p['concurrency']}, bridge DB {p['db']},"
        f" Synapse module {'on' if p['synapse_module'] else 'off'};"
        f" nproc {r['machine']['nproc']}"
    )
    print(
        f"{'phase':<10} {'wall s':>8} {'bridge CPU s':>13} {'Synapse CPU s':>14}"
        f" {'others CPU s':>13} {'bridge/Synapse':>15}  target"
    )
    for name in ("provision", "move", "baseline"):
        if name not in r:
            continue
        ph = r[name]
        bridge_cpu = ph.get("bridge_cpu_s")
        ratio = ph.get("bridge_over_synapse_cpu")
        print(
            f"{name:<10} {ph['wall_s']:>8.2f} "
            f"{'-' if bridge_cpu is None else f'{bridge_cpu:.2f}':>13} "
            f"{ph['synapse_cpu_s']:>14.2f} "
            f"{ph['others_cpu_s']:>13.2f} "
            f"{'-' if ratio is None else f'{ratio:.3f}':>15}  "
            + (
                "-"
                if ratio is None
                else f"<= {TARGET_CPU_RATIO} {verdict(ratio, TARGET_CPU_RATIO)}"
            )
        )
    for name in ("provision", "move"):
        if "bridge_db_cpu_s" in r[name]:
            print(
                f"{name}: bridge's PostgreSQL backends {r[name]['bridge_db_cpu_s']:.2f}s CPU;"
                f" (bridge + its DB) / Synapse {r[name]['bridge_with_db_over_synapse_cpu']:.3f}"
            )
    ratios = r["ratios"]
    if "provision_wall_over_baseline_wall" in ratios:
        wr = ratios["provision_wall_over_baseline_wall"]
        print(
            f"provision wall / baseline wall: {wr:.3f}  (target <= {TARGET_WALL_RATIO}:"
            f" {verdict(wr, TARGET_WALL_RATIO)})"
        )
        print(
            "provision Synapse CPU / baseline Synapse CPU: "
            f"{ratios['provision_synapse_cpu_over_baseline_synapse_cpu']:.3f}"
        )
    else:
        print("baseline skipped (--skip-baseline): no wall ratio")
    print(
        f"provision: {r['provision']['matters_per_s']} matters/s, all PUTs answered after"
        f" {r['provision']['requests_sent_s']}s, PUT latency {r['provision']['put_latency']}"
    )
    print(
        f"checks: rooms {r['provision']['check_ok']}, moves {r['move']['check_ok']},"
        f" baseline room shape {r.get('baseline', {}).get('same_room_shape', '-')};"
        f" bridge log warnings/errors {r['bridge_log_warnings']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--matters", type=int, default=500)
    parser.add_argument("--members", type=int, default=4, help="room members per matter")
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client requests in flight, and the bridge's reconciler workers",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--bridge-log-level", default="INFO")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="bridge phases only (quick comparisons of bridge changes; no wall ratio)",
    )
    parser.add_argument(
        "--restart-synapse",
        action="store_true",
        help="restart Synapse before the baseline (always done with --module)",
    )
    parser.add_argument(
        "--module",
        action="store_true",
        help="load the firm's policy module into Synapse for the bridge phases (the baseline"
        " then runs on the same Synapse data dir restarted without it)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between status-poll rounds while waiting (the move phase uses at most 0.2)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="per phase, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args(argv)
    if min(args.people, args.matters, args.concurrency) < 1 or args.moves < 0:
        parser.error("sizes must be positive")
    try:
        result = asyncio.run(run(args))
    except BenchError as e:
        log(f"benchmark failed: {e}")
        return 1
    out = write_results("provision", result, args.out)
    print_table(result)
    print(f"results: {out}")
    checks = (
        result["provision"]["check_ok"],
        result["move"]["check_ok"],
        result.get("baseline", {}).get("same_room_shape", True),
    )
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
