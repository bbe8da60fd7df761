"""The homeserver module installs on its own: `synapse-module/` builds the `firm-policy-module`
wheel (the core and the module, depending on attrs and ruamel.yaml only), and the module loads
from it in an interpreter where nothing else of the bridge, and none of the bridge's own
dependencies, can be imported: only the wheel's files and Synapse's environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The bridge process's dependencies that Synapse does not have: importing one fails. ruamel too:
# the core reads YAML for role-table files only, and the module gets the table as JSON.
BRIDGE_ONLY = ["mautrix", "aiohttp", "yarl", "multidict", "asyncpg", "aiosqlite", "ruamel"]

LOAD = """
import importlib.abc, json, sys
from unittest.mock import Mock
wheel, site, blocked = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Blocked())
# python -S: no site-packages and no .pth files, so the checkout's editable install is not seen.
sys.path[:0] = [wheel]
sys.path.append(site)
from synapse.module_api import ModuleApi
before = set(sys.modules)
from bridge.synapse_module import FirmPolicyModule
config = FirmPolicyModule.parse_config(
    {"bridge_url": "http://127.0.0.1:1", "shared_secret": "s" * 40}
)
api = Mock(spec=ModuleApi)
FirmPolicyModule(config, api)
print(json.dumps({
    "bridge_file": sys.modules["bridge"].__file__,
    "added": sorted(set(sys.modules) - before),
    "registered": api.register_spam_checker_callbacks.call_count,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution built as `pip install ./synapse-module` builds it, from a copy with its
    links resolved (so the build writes nothing into the checkout)."""
    work = tmp_path_factory.mktemp("module-dist")
    shutil.copytree(
        ROOT / "synapse-module",
        work / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(work),
            str(work / "src"),
        ],
        cwd=work,
        check=True,
        timeout=600,
    )
    (built,) = work.glob("firm_policy_module-*.whl")
    return built


def test_the_distribution_holds_the_core_and_the_module_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if ".dist-info/" not in n]
        meta = Parser().parsestr(
            z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        )
    code = {n for n in names if n.endswith(".py")}
    expected = {"bridge/__init__.py"}
    expected |= {f"bridge/core/{p.name}" for p in (ROOT / "bridge" / "core").glob("*.py")}
    expected |= {
        f"bridge/synapse_module/{p.name}" for p in (ROOT / "bridge" / "synapse_module").glob("*.py")
    }
    assert code == expected
    assert set(names) == code
    requires = sorted(r.split(">")[0].split("<")[0].strip() for r in meta.get_all("Requires-Dist"))
    assert requires == ["attrs", "ruamel.yaml"]


def test_the_module_loads_from_the_distribution_alone(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(unpacked)
    site = sysconfig.get_paths()["purelib"]
    out = subprocess.run(
        [sys.executable, "-S", "-c", LOAD, str(unpacked), site, ",".join(BRIDGE_ONLY)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert Path(result["bridge_file"]).is_relative_to(unpacked)
    assert result["registered"] == 1
    ours = sorted(m for m in result["added"] if m.split(".")[0] == "bridge")
    assert ours == [
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
        "bridge.synapse_module.pubsub",
        "bridge.synapse_module.workers",
    ]
