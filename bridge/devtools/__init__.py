"""Tools for the demo, the tests and the benchmarks: loopback servers and their clients."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read, created so from the start (it holds secrets)."""
    with open(path, "w", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
        fh.write(text)
    path.chmod(0o600)
