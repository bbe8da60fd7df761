"""What the benchmarks share: the machine they ran on and how busy it was, errors and progress
lines, bounded concurrency, and scratch PostgreSQL databases.

The benchmarks run as scripts (`python bench/x.py`), so this module is imported as `common`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import psutil

if TYPE_CHECKING:
    from bridge.devtools.synapse import SynapseServer

ROOT = Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("FIRM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
T = TypeVar("T")


class BenchError(Exception):
    """The run cannot go on; the message says why."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def bounded(concurrency: int, items: Iterable[T], fn: Callable[[T], Awaitable[None]]) -> None:
    """Run fn over items with at most `concurrency` calls in flight."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await fn(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def synapse_pid(server: SynapseServer) -> int:
    # SynapseServer keeps its Popen private and has no public accessor for it.
    proc = server._proc
    if proc is None:
        raise BenchError("Synapse is not running")
    return proc.pid


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
