"""The import graph between the bridge's packages, and its cycles.

`python scripts/import_graph.py` prints one line per package with the packages it imports, then
the cycles (strongly connected components of more than one package, and of modules with
`--modules`). A package is a folder of `bridge/`; the top-level modules (`bridge/app.py`, ...)
and the entry points (`__main__` modules) are each a node of their own. Imports inside functions
count (they are still dependencies); imports under `if TYPE_CHECKING:` do not.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "bridge"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from bridge import policy` imports the module bridge.policy
            found.update(f"{mod}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def node_of(module: str, packages: set[str]) -> str:
    parts = module.split(".")
    if parts[-1] == "__main__":
        return module  # an entry point (`python -m`): nothing imports it, so it closes no cycle
    if len(parts) >= 2 and f"bridge.{parts[1]}" in packages:
        return f"bridge.{parts[1]}"
    return module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", action="store_true", help="also the module-level cycles")
    args = parser.parse_args()
    files = sorted(PKG.rglob("*.py"))
    names = {module_name(p): p for p in files}
    packages = {n for n, p in names.items() if p.name == "__init__.py" and n != "bridge"}
    mod_graph: dict[str, set[str]] = defaultdict(set)
    pkg_graph: dict[str, set[str]] = defaultdict(set)
    for name, path in names.items():
        for target in imports(path, name):
            if target not in names or target == name:
                continue
            mod_graph[name].add(target)
            a, b = node_of(name, packages), node_of(target, packages)
            if a != b and b != "bridge":
                pkg_graph[a].add(b)
    nodes = sorted({node_of(n, packages) for n in names} - {"bridge"})
    for n in nodes:
        print(f"{n} -> {', '.join(sorted(pkg_graph.get(n, ()))) or '(nothing)'}")
    edges = sum(len(v) for v in pkg_graph.values())
    found = cycles(pkg_graph)
    print(f"\n{len(nodes)} nodes, {edges} edges; {len(found)} package cycle(s)")
    for comp in found:
        print("  cycle:", " <-> ".join(comp))
    if args.modules:
        found = cycles(mod_graph)
        print(f"{len(found)} module cycle(s)")
        for comp in found:
            print("  cycle:", " <-> ".join(comp))


if __name__ == "__main__":
    main()
