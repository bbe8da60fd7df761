"""Imports point one way: no cycle between the bridge's packages (scripts/import_graph.py), and
the store imports nothing above it (the HTTP layer, the service layer, the audit)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_cycle_between_packages() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert " 0 package cycle(s)" in out, out[out.rfind("\n\n") :]


def test_the_store_imports_only_the_core() -> None:
    for path in sorted((ROOT / "bridge" / "db").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                module = node.module or ""
                assert module == "core" or module.startswith("core."), (
                    f"{path.relative_to(ROOT)} imports ..{module}"
                )
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("bridge"), f"{path.relative_to(ROOT)}"
