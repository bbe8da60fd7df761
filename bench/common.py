"""What every benchmark records beside its figures: the machine it ran on and how busy it was.

The benchmarks run as scripts (`python bench/x.py`), so this module is imported as `common`.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


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
