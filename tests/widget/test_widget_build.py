"""The widget's built files shipped in the plugin are exactly what its sources build to."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "wp_plugin_shim" / "widget"
SHIPPED = WIDGET / "dist"
# scripts/test.sh builds here from source (npm ci && node build.mjs build/widget) before pytest.
FRESH = Path(os.environ.get("FIRM_WIDGET_BUILD", ROOT / "build" / "widget"))


def build(out: Path) -> None:
    if not (WIDGET / "node_modules").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=WIDGET, check=True, timeout=600
        )
    subprocess.run(["node", "build.mjs", str(out)], cwd=WIDGET, check=True, timeout=300)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (FRESH / "manifest.json").exists():
        return FRESH
    out = tmp_path_factory.mktemp("widget-build")
    build(out)
    return out


def test_shipped_build_is_the_source_build(fresh: Path) -> None:
    shipped = sorted(p.name for p in SHIPPED.iterdir())
    built = sorted(p.name for p in fresh.iterdir())
    assert shipped == built, (
        "rebuild the widget: cd wp_plugin_shim/widget && npm ci && npm run build"
    )
    _, mismatch, errors = filecmp.cmpfiles(SHIPPED, fresh, built, shallow=False)
    assert not mismatch and not errors, f"shipped files differ from the build: {mismatch + errors}"


def test_manifest_names_hashed_files(fresh: Path) -> None:
    manifest = json.loads((fresh / "manifest.json").read_text())
    names = [
        manifest["wasm"],
        manifest["chat"]["js"],
        manifest["chat"]["css"],
        manifest["logout"]["js"],
    ]
    for name in names:
        assert (fresh / name).exists()
        # A content hash in the name (esbuild's 8 characters, or 12 hex for the wasm).
        assert re.fullmatch(r"[a-z]+-[A-Za-z0-9]{8,}\.(js|css|wasm)", name), name
    # No file of the build points at another origin (a CDN, fonts, analytics).
    chat = (fresh / manifest["chat"]["js"]).read_text()
    assert "//cdn." not in chat and "fonts.googleapis" not in chat


def test_build_is_reproducible(tmp_path: Path) -> None:
    """Two builds of the same sources give the same bytes (what makes the check above fair)."""
    if shutil.which("node") is None:
        pytest.fail("node is needed to build the widget")
    build(tmp_path / "a")
    _, mismatch, errors = filecmp.cmpfiles(
        SHIPPED, tmp_path / "a", [p.name for p in SHIPPED.iterdir()], shallow=False
    )
    assert not mismatch and not errors, mismatch + errors


def test_dependencies_versions_and_licences() -> None:
    """matrix-js-sdk is 43.x (42.4 fixed the one-time-key bug that broke new Olm sessions), its
    Rust crypto is the wasm one, and no package the build locks is GPL-3 or AGPL (the plugin
    is GPL-2.0-or-later): every licence is one of the permissive ones the README names."""
    lock = json.loads((WIDGET / "package-lock.json").read_text())
    packages = {k: v for k, v in lock["packages"].items() if k}
    sdk = tuple(int(x) for x in packages["node_modules/matrix-js-sdk"]["version"].split("."))
    assert sdk[0] == 43, sdk
    assert "node_modules/@matrix-org/matrix-sdk-crypto-wasm" in packages
    permissive = {"MIT", "Apache-2.0", "ISC", "BSD-2-Clause", "BSD-3-Clause", "0BSD"}
    other = {name: p.get("license") for name, p in packages.items()}
    other = {n: lic for n, lic in other.items() if lic not in permissive}
    assert not other, other
