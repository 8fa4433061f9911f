"""The package's layers, and the rule that imports run one way: down.

``LAYERS`` is the architecture in one table, lowest first. A module may import modules of
its own layer and of the layers below it, never one above; and no set of modules may import
each other in a circle. The scan reads the source with ``ast`` (nothing is imported), counts
imports inside functions too, and leaves out those under ``if TYPE_CHECKING:`` (annotations
only). docs/architecture.md draws the same table.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: (layer, the packages or modules in it), lowest first.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("litequeue.base", "litequeue.errors")),
    ("store", ("litequeue.store", "litequeue.ledger")),
    ("jobs", ("litequeue.jobs",)),
    ("engine", ("litequeue.engine",)),
    ("runtime", ("litequeue.runtime",)),
    ("app", ("litequeue.app",)),
    ("features", ("litequeue.inbox", "litequeue.schedules", "litequeue.ops")),
    ("front", ("litequeue.cli", "litequeue_web", "litequeue", "litequeue.__main__", "litequeue.contrib")),
]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["litequeue_web", *rel.parts[1:]] if rel.parts[0] == "web" else list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.glob("litequeue/**/*.py"), *ROOT.glob("web/**/*.py")]):
        found[module_name(path)] = path
    return found


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, owners) in enumerate(LAYERS):
        for owner in owners:
            if (module == owner or module.startswith(owner + ".")) and len(owner) > best_len:
                best, best_len = index, len(owner)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return best


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for sub in ast.walk(child):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def edges() -> list[Edge]:
    modules = sources()
    found: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    parent = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    parent = node.module or ""
                for alias in node.names:
                    sub = f"{parent}.{alias.name}"
                    targets.append(sub if sub in modules else parent)
            for target in targets:
                while target and target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    found.append(Edge(name, target, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def circles(found: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_every_module_has_a_layer() -> None:
    for name in sources():
        layer_of(name)


def test_no_import_goes_up_a_layer() -> None:
    upward = [e for e in edges() if layer_of(e.target) > layer_of(e.source)]
    assert not upward, "imports that go up a layer (move the code down, or take a registered hook):\n" + "\n".join(
        f"{e.where}: {e.source} ({LAYERS[layer_of(e.source)][0]}) imports {e.target} "
        f"({LAYERS[layer_of(e.target)][0]})" for e in sorted(upward, key=lambda e: e.where))


def test_no_import_circle() -> None:
    found = edges()
    problems = []
    for component in circles(found):
        members = set(component)
        lines = [f"  {e.where}: {e.source} imports {e.target}" for e in found
                 if e.source in members and e.target in members]
        problems.append(f"circle of {len(component)}: {' '.join(component)}\n" + "\n".join(sorted(lines)))
    assert not problems, "import circles:\n" + "\n".join(problems)


def test_the_scan_finds_circles_and_ignores_type_checking() -> None:
    found = [Edge("a", "b", "a.py:1"), Edge("b", "c", "b.py:1"), Edge("c", "a", "c.py:1"), Edge("c", "d", "c.py:2")]
    assert circles(found) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nimport y\n")
    assert _type_checking_lines(tree) == {3}


def test_rooms_are_small() -> None:
    big = {name: n for name, path in sources().items() if (n := len(path.read_text().splitlines())) > 500}
    assert not big, f"modules over 500 lines: {big}"
    top = [p.name for p in (ROOT / "litequeue").glob("*.py")]
    assert len(top) <= 15, f"{len(top)} modules directly in litequeue/: {sorted(top)}"
