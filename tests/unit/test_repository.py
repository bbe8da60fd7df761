"""The repository stands alone: nothing points outside it or at one machine's folders, its
documents' links resolve, the package data it declares exists, and the scripts' helpers work."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folders of the machine the project was written on, or of a checkout beside this one.
MACHINE_PATHS = re.compile(r"/work/|\.\./shared\b|/home/[a-z]|/Users/[A-Za-z]")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_file_points_at_a_machine_path() -> None:
    found = []
    for path in tracked_files():
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        this_test = path == Path(__file__).resolve()
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATHS.search(line) and not this_test:
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def markdown_links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md", "bench/README.md"])
def test_documents_link_only_inside_the_repository(doc: str) -> None:
    """The repository stands alone: its documents link to its own files, never to a page on the
    web (which moves, changes or goes away) or a design document kept elsewhere."""
    path = ROOT / doc
    for link in markdown_links(path.read_text()):
        assert not link.startswith(("http://", "https://", "//")), f"{doc} links out: {link}"
        if link.startswith(("#", "mailto:")):
            continue
        target = (path.parent / link.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT), f"{doc} links outside the repository: {link}"
        assert target.exists(), f"{doc} links to a missing file: {link}"


def test_readme_points_at_the_architecture_document() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/ARCHITECTURE.md" in readme
    assert (ROOT / "docs" / "ARCHITECTURE.md").is_file()


def test_the_architecture_map_names_every_part_and_calls_nothing_unbuilt() -> None:
    """docs/ARCHITECTURE.md's table of where things are names every package of bridge/ and the
    widget, and the page does not list as unbuilt a part the tree holds (it said the widget,
    transcripts, calls and workers were "not built yet" long after they landed)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("### Where things are", 1)[1].split("\n### ", 1)[0]
    packages = sorted(p.name for p in (ROOT / "bridge").iterdir() if (p / "__init__.py").is_file())
    assert len(packages) > 10, packages
    missing = [p for p in packages if f"`bridge/{p}/" not in table]
    assert not missing, f"docs/ARCHITECTURE.md's table does not name bridge/{missing}"
    for part in ("wp_plugin_shim/widget/", "config/workers/", "config/coturn.conf"):
        assert (ROOT / part).exists(), part
        assert f"`{part}" in table, f"docs/ARCHITECTURE.md's table does not name {part}"
    assert "not built yet" not in text.lower()


def test_no_benchmark_file_is_over_600_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "bench").glob("*.py")}
    assert sizes and not {name: n for name, n in sizes.items() if n > 600}, sizes


def test_package_data_patterns_match_real_files() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    for package, patterns in package_data.items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"{package}: {pattern} matches no file"


def test_dependencies_have_upper_bounds() -> None:
    """A new major (or, for the linters, minor) release is taken up on purpose, never overnight.
    The module's own distribution (synapse-module/) too: it goes into the homeserver's
    environment."""
    requirements: list[str] = []
    for pyproject in ("pyproject.toml", "synapse-module/pyproject.toml"):
        project = tomllib.loads((ROOT / pyproject).read_text())["project"]
        requirements += project["dependencies"]
        for extra in project.get("optional-dependencies", {}).values():
            requirements += [r for r in extra if not r.startswith("firm-bridge")]
    assert len(requirements) > 20, requirements
    unbounded = [r for r in requirements if "<" not in r and "==" not in r]
    assert not unbounded, unbounded


def test_pg_trust_loopback_prepends_its_rules_once(tmp_path: Path) -> None:
    hba = tmp_path / "pg_hba.conf"
    original = "local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n"
    hba.write_text(original)
    hba.chmod(0o640)
    for _ in range(2):
        subprocess.run(
            [str(ROOT / "scripts" / "pg_trust_loopback.sh"), str(hba)], check=True, timeout=30
        )
    lines = hba.read_text().splitlines()
    # First match wins in pg_hba.conf: the trust rules come before Debian's password rule.
    assert lines[1:3] == ["host all all 127.0.0.1/32 trust", "host all all ::1/128 trust"]
    assert hba.read_text().endswith(original)
    assert sum(line.endswith(" trust") for line in lines) == 2
    assert hba.stat().st_mode & 0o777 == 0o640
