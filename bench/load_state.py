"""bench/load_state.py: how soon a change of the firm's state is in force on every Synapse process,
on one process and on the worker topology, side by side in one run.

For each topology: `--changes` times, a new person is sent through the signed provisioning API;
from the moment the API answers, every Synapse process is asked (every 10 ms, without making it
read: the module's /_synapse/client/firm/held) which generation it holds, until all hold the new
one. Then `--departures` people depart: the deactivate call answers only once every process holds
the departure (on workers, through the module's Redis fan-out), so its duration is the bound there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from common import BenchError, log
from harness import machine_info, percentiles_ms, write_results

from bridge.core.constants import HELD_PATH
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.topology import Topology

POLL = 0.01


async def held(http: aiohttp.ClientSession, topo: Topology, name: str) -> int:
    headers = {"Authorization": f"Bearer {topo.module_secret}"}
    async with http.get(topo.process_url(name) + HELD_PATH, headers=headers) as r:
        data = await r.json()
        return int(data["generation"] or 0)


async def generation(http: aiohttp.ClientSession, topo: Topology) -> int:
    headers = {"Authorization": f"Bearer {topo.module_secret}"}
    async with http.get(topo.bridge_url + "/_firm/internal/v1/snapshot", headers=headers) as r:
        return int((await r.json())["generation"])


async def run_one(kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    log(f"{kind}: starting the topology")
    topo = Topology(work / kind, workers=kind == "workers", synapse_log_level="WARNING")
    await topo.start()
    api = ProvisioningClient(topo.bridge_url, topo.provisioning_secret)
    reach: dict[str, list[float]] = {name: [] for name in topo.processes}
    everywhere: list[float] = []
    departures: list[float] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.sleep(3)  # every process has read the state once
            for i in range(args.changes):
                body = {"login": f"p{i:04d}", "display_name": f"Person {i}", "role": "partner"}
                status, data = await api.put_person(1000 + i, body)
                if status != 200:
                    raise BenchError(f"PUT person: {status} {data}")
                answered = time.monotonic()
                target = await generation(http, topo)
                pending = set(topo.processes)
                while pending:
                    for name in list(pending):
                        if await held(http, topo, name) >= target:
                            reach[name].append(time.monotonic() - answered)
                            pending.discard(name)
                    if time.monotonic() - answered > 30:
                        raise BenchError(f"{sorted(pending)} did not hold generation {target}")
                    await asyncio.sleep(POLL)
                everywhere.append(time.monotonic() - answered)
                await asyncio.sleep(0.3)  # changes at different points of the read cycle
            for i in range(args.departures):
                began = time.monotonic()
                status, data = await api.deactivate(1000 + i)
                if status != 200:
                    raise BenchError(f"deactivate: {status} {data}")
                departures.append(time.monotonic() - began)
                target = await generation(http, topo)
                lagging = [n for n in topo.processes if await held(http, topo, n) < target]
                if lagging:
                    raise BenchError(f"the departure answered before {lagging} held it")
    finally:
        await api.close()
        await topo.stop()
    return {
        "processes": topo.processes,
        "change_reaches_process": {n: percentiles_ms(v) for n, v in reach.items()},
        "change_reaches_every_process": percentiles_ms(everywhere),
        "departure_call": percentiles_ms(departures),
    }


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    results = {}
    with tempfile.TemporaryDirectory(prefix="load-state-") as tmp:
        for kind in args.topology:
            results[kind] = await run_one(kind, args, Path(tmp))
    out = write_results(
        "load-state",
        {
            "argv": sys.argv,
            "machine": info,
            "args": vars(args) | {"out": str(args.out)},
            "results": results,
        },
        args.out,
    )
    for kind, r in results.items():
        every, dep = r["change_reaches_every_process"], r["departure_call"]
        print(
            f"{kind:<8} a change in force on every process ({len(r['processes'])}): p50"
            f" {every['p50_ms']} ms, p95 {every['p95_ms']} ms, max {every['max_ms']} ms;"
            f" departure call p50 {dep['p50_ms']} ms, max {dep['max_ms']} ms"
        )
    print(f"results: {out}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--changes", type=int, default=40)
    p.add_argument("--departures", type=int, default=10)
    p.add_argument("--topology", nargs="+", choices=("one", "workers"), default=["one", "workers"])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    try:
        return asyncio.run(main_async(args))
    except BenchError as e:
        log(f"failed: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
