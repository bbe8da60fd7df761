"""Starting what the benchmarks measure and recording it, written once: the bridge's
configuration, registration and start-up, a stub appservice, free ports, CPU readings, latency
percentiles, results files, scratch PostgreSQL databases and the machine a run was on.

The benchmarks run as scripts (`python bench/x.py`), so this module is imported as `harness`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import psutil
from aiohttp import web
from common import ALIAS_PREFIX, BOT, DOMAIN, ROOT, BenchError, wait_until

from bridge import registration as reg
from bridge.config import parse

if TYPE_CHECKING:
    from bridge.devtools.client import ProvisioningClient
    from bridge.devtools.process import BridgeProcess

RESULTS = ROOT / "bench" / "results"
PG_DSN = os.environ.get("FIRM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


# --- the bridge ---------------------------------------------------------------------------------


def bridge_config(
    port: int, db_uri: str, secret: str, module_secret: str, **sections: dict[str, Any]
) -> dict[str, Any]:
    """The bridge's configuration on loopback (the role table it ships); `sections` add to it.
    The homeserver's address is filled in once Synapse is up."""
    data: dict[str, Any] = {
        "homeserver": {
            "address": "http://127.0.0.1:1",
            "domain": DOMAIN,
            "public_address": "http://127.0.0.1:2",  # no clients in these benchmarks
        },
        "appservice": {
            "id": "firm-bridge",
            "address": f"http://127.0.0.1:{port}",
            "hostname": "127.0.0.1",
            "port": port,
            "bot_localpart": BOT,
            "alias_prefix": ALIAS_PREFIX,
        },
        "database": {"uri": db_uri},
        "provisioning": {"shared_secret": secret},
        "homeserver_module": {"shared_secret": module_secret},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Checked as the bridge checks it, then written readable by this user alone."""
    parse(data, path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def write_registration(config_path: Path, data: dict[str, Any], path: Path) -> reg.Registration:
    reg.write(parse(data, config_path), path)
    return reg.load(path)


async def wait_bridge_up(api: ProvisioningClient, bridge: BridgeProcess, timeout: float) -> None:
    """Until the bridge answers the provisioning API and has reached the homeserver."""

    async def up() -> bool:
        if not bridge.alive():
            raise BenchError(f"the bridge exited during start-up:\n{bridge.log_tail()}")
        try:
            status, _ = await api.get_person(1)
        except aiohttp.ClientError:
            return False
        return status == 404 and "answered the appservice ping" in bridge.log_path.read_text()

    try:
        await wait_until(up, timeout, "the bridge starting", interval=0.1)
    except BenchError:
        raise BenchError(
            f"the bridge was not up after {timeout:.0f}s:\n{bridge.log_tail()}"
        ) from None


def stub_appservice_app() -> web.Application:
    """Answers a homeserver's appservice pushes where no bridge runs (a baseline's server), so
    that Synapse does the same push work as with the bridge instead of backing off."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes([web.route("*", "/{tail:.*}", ok)])
    return app


async def start_stub_appservice(port: int) -> web.AppRunner:
    runner = web.AppRunner(stub_appservice_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def free_ports(n: int) -> list[int]:
    """n distinct ports free a moment ago (all held at once while the kernel picks them:
    one-at-a-time picks may repeat, and a homeserver on the stub's port would talk to it)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def port_open(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        await asyncio.sleep(0.1)
    return False


# --- figures ------------------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User+system CPU of a process and, with `children`, its reaped children and its live
    descendants."""
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    if not children:
        return t.user + t.system
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            ct = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += ct.user + ct.system
    return total


def percentiles_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """Latencies in seconds as count, p50, p95 and max in milliseconds."""
    if not samples_s:
        return {}
    s = sorted(samples_s)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1)

    return {"count": len(s), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": pct(1.0)}


def write_results(name: str, result: Mapping[str, Any], out: Path | None) -> Path:
    path = out or RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


async def create_database(name: str) -> str:
    """A fresh PostgreSQL database (one left by an earlier run is dropped first); its URI."""
    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{PG_DSN}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import synapse

        synapse_version = str(synapse.__version__)
    except Exception:
        synapse_version = "?"
    git: dict[str, Any] = {}
    try:
        git["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bridge"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        git["bridge_dirty_files"] = len(dirty.splitlines())
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "synapse": synapse_version,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "git": git,
    }
