"""The core stands on its own and the homeserver module loads nothing else of the bridge: what
each imports (read from the source), and what loading the module really brings into a fresh
interpreter. tests/test_module_distribution.py builds and loads the module's own distribution."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "bridge" / "core"
MODULE = ROOT / "bridge" / "synapse_module"
# What the module may take from Synapse: the module API, and the one thing it lacks (the
# address of the client logging in); Twisted is the reactor the module API runs on.
SYNAPSE_ALLOWED = {"synapse.module_api", "synapse.module_api.errors", "synapse.logging.context"}


def imported(folder: Path) -> dict[str, set[str]]:
    """Each file's imports: absolute names, and relative ones as `.name` / `..name`."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
        found[path.name] = names
    return found


def third_party(name: str) -> bool:
    return not name.startswith(".") and name.split(".")[0] not in sys.stdlib_module_names


def test_the_core_imports_only_itself_attrs_and_ruamel() -> None:
    for file, names in imported(CORE).items():
        outside = {n for n in names if n.startswith("..")}
        assert not outside, f"bridge/core/{file} imports the rest of the bridge: {outside}"
        foreign = {
            n for n in names if third_party(n) and n.split(".")[0] not in ("attrs", "ruamel")
        }
        assert not foreign, f"bridge/core/{file} depends on {foreign}"


def test_the_module_imports_only_the_core_and_the_module_api() -> None:
    for file, names in imported(MODULE).items():
        bridge = {n for n in names if n.startswith("..") and not n.startswith("..core")}
        assert not bridge, f"bridge/synapse_module/{file} imports {bridge}"
        synapse = {n for n in names if n.split(".")[0] == "synapse"} - SYNAPSE_ALLOWED
        assert not synapse, f"bridge/synapse_module/{file} imports Synapse's internals {synapse}"
        other = {
            n
            for n in names
            if third_party(n) and n.split(".")[0] not in ("synapse", "twisted", "attrs")
        }
        assert not other, f"bridge/synapse_module/{file} depends on {other}"


LOAD = """
import json, sys
import synapse.module_api
before = set(sys.modules)
import bridge.synapse_module
added = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def test_loading_the_module_brings_only_the_core_into_synapse() -> None:
    """As Synapse loads it (`modules:` imports bridge.synapse_module): beside what the module API
    itself loads, only the core and the module, and nothing from outside the standard library."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD], capture_output=True, text=True, check=True, timeout=120
    )
    added = json.loads(out.stdout)
    ours = {m for m in added if m == "bridge" or m.startswith("bridge.")}
    assert ours == {
        "bridge",
        "bridge.core",
        "bridge.core.calls",
        "bridge.core.constants",
        "bridge.core.firm_view",
        "bridge.core.homeserver_settings",
        "bridge.core.model",
        "bridge.core.policy",
        "bridge.synapse_module",
        "bridge.synapse_module.module",
        # Workers: every process reads, and a read asked of one reaches all (its own small
        # Redis client on Twisted, not a Redis library).
        "bridge.synapse_module.pubsub",
        "bridge.synapse_module.workers",
    }
    # Synapse's and Twisted's own modules are the homeserver's, whatever the module touches.
    foreign = {m.split(".")[0] for m in added if third_party(m)} - {"bridge", "synapse", "twisted"}
    assert not foreign, f"loading the module brings {sorted(foreign)} into Synapse"
