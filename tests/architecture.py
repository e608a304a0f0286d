"""The layout's rules, checked from the code's own imports (docs/ARCHITECTURE.md).

    python -m tests.architecture        # from the checkout: prints each broken rule, exit 1 if any

Walks every module of the project's packages with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` count too: a circle that only type checking sees is still a circle a reader must
untangle), then fails on

- an import circle between modules, anywhere;
- an import that crosses rooms in a direction the table ``MAY_IMPORT`` does not allow.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pbx", "storage", "announce", "recorderd", "bench")

# Room -> the rooms it may import. A room is the longest prefix listed here; a module may always
# import from its own room. Leaves (numbers, errors, logs, statusfile) are shared by every room.
_LEAVES = (
    "recorderd.numbers",
    "recorderd.dates",
    "recorderd.errors",
    "recorderd.logs",
    "recorderd.statusfile",
)
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "pbx": (),
    "storage": (),
    "announce": (),
    "recorderd.numbers": (),
    "recorderd.dates": (),
    "recorderd.errors": (),
    "recorderd.logs": (),
    "recorderd.statusfile": (),
    "recorderd.config": ("storage", "recorderd.numbers", "recorderd.errors"),
    "recorderd.retention": ("storage", "recorderd.config", *_LEAVES),
    "recorderd.people": ("storage", "recorderd.config", *_LEAVES),
    "recorderd.incidents": ("storage", "recorderd.config", *_LEAVES),
    "recorderd.records": ("storage", "recorderd.config", "recorderd.people", "recorderd.retention", *_LEAVES),
    "recorderd.daemon": (
        "pbx",
        "storage",
        "announce",
        "recorderd.config",
        "recorderd.retention",
        "recorderd.incidents",
        *_LEAVES,
    ),
    "recorderd.service": (
        "storage",
        "recorderd.config",
        "recorderd.incidents",
        "recorderd.people",
        "recorderd.records",
        "recorderd.retention",
        *_LEAVES,
    ),
    "recorderd.console": ("storage", "recorderd.config", "recorderd.service", *_LEAVES),
    "recorderd.cli": (
        "pbx",
        "storage",
        "announce",
        "recorderd.config",
        "recorderd.daemon",
        "recorderd.service",
        "recorderd.console",
        *_LEAVES,
    ),
    "bench": ("pbx", "storage", "announce", "recorderd"),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's scripts: loaded by Alembic, never imported
            found[module_name(path)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (``a.b.C`` -> ``a.b``), if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name, known)
            # A package's own __init__ is not an edge to its modules' importers: importing
            # ``recorderd.config.base`` runs ``recorderd/config/__init__`` but does not depend on it.
            if target is not None and target != module and not module.startswith(target + "."):
                yield Edge(module, target, node.lineno)


def room(module: str) -> str | None:
    best = None
    for name in MAY_IMPORT:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def direction_problems(edges: list[Edge], known: dict[str, Path]) -> list[str]:
    out = []
    for e in edges:
        src, dst = room(e.source), room(e.target)
        if src is None or dst is None or src == dst:
            continue
        allowed = MAY_IMPORT[src]
        if not any(dst == a or dst.startswith(a + ".") for a in allowed):
            where = known[e.source].relative_to(ROOT)
            out.append(f"{where}:{e.line}: {e.source} imports {e.target}: {src} may not import {dst}")
    return out


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle to untangle."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems() -> list[str]:
    known = modules()
    edges = [e for m, p in known.items() for e in imports(m, p, known)]
    out = [f"import circle: {' <-> '.join(c)}" for c in cycles(edges)]
    return out + direction_problems(edges, known)


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    print(f"{len(modules())} modules, {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
