"""The shape of the code, checked on every product module found on disk (not a list of today's files):

- imports flow one way: settings < ingest < index < {service, eval} < service.cli; settings imports no
  project module; service (outside service.cli) and eval do not import each other; nothing outside
  service.cli imports service.cli;
- no import cycle among project modules, counting imports inside functions too (a deferred import
  hides a circle from Python, not from a reader);
- no product module over 500 lines, no function over 80 lines (the search page's static files aside).

The graph is computed here with ``ast``; the same edges as grimp's (an import names one module:
``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from settings import PROJECT_ROOT

PACKAGES = ("ingest", "index", "service", "eval")
LEAF_MODULES = ("settings",)
EXCLUDED_DIRS = {"static", "__pycache__"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
CLI = "service.cli"


def layer(module: str) -> tuple[int, str]:
    """(rank, group): a module may import ranks below its own, and its own group at its own rank."""
    top = module.split(".")[0]
    if module == CLI or module.startswith(CLI + "."):
        return 4, "cli"
    return {"settings": (0, "settings"), "ingest": (1, "ingest"), "index": (2, "index"),
            "service": (3, "service"), "eval": (3, "eval")}[top]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    module_level: bool


def product_files() -> dict[str, Path]:
    """Every product module by dotted name, found by walking the packages."""
    found = {name: PROJECT_ROOT / f"{name}.py" for name in LEAF_MODULES}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT)
            if EXCLUDED_DIRS & set(rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


FILES = product_files()
TREES = {name: ast.parse(path.read_text(), filename=str(path)) for name, path in FILES.items()}


def _resolve(name: str, module: str, level: int, is_package: bool) -> str:
    if not level:
        return name
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _project_module(dotted: str) -> str | None:
    """The most specific project module ``dotted`` names (a module or a package), else None."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in FILES:
            return candidate
    return None


def _function_bodies(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside functions (they run when called, not at import)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return inside


def imports_of(module: str) -> list[Import]:
    tree = TREES[module]
    is_package = FILES[module].name == "__init__.py"
    lazy = _function_bodies(tree)
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", module, node.level, is_package)
            targets = [f"{base}.{a.name}" if _project_module(f"{base}.{a.name}") == f"{base}.{a.name}" else base
                       for a in node.names]
        for dotted in dict.fromkeys(targets):
            target = _project_module(dotted)
            if target and target != module and not any(o.target == target and o.line == node.lineno for o in out):
                out.append(Import(module, target, node.lineno, id(node) not in lazy))
    return out


EDGES = [edge for module in FILES for edge in imports_of(module)]


def test_the_walk_finds_every_package_and_the_cli():
    assert {name.split(".")[0] for name in FILES} == set(PACKAGES) | set(LEAF_MODULES)
    assert CLI in FILES and "service.app" in FILES and "eval.harness" in FILES
    assert any(e.source.startswith(CLI) and e.target.startswith("eval") for e in EDGES)  # the walk sees imports


def test_imports_flow_one_way():
    wrong = []
    for e in EDGES:
        (rank_from, group_from), (rank_to, group_to) = layer(e.source), layer(e.target)
        if rank_to > rank_from or (rank_to == rank_from and group_to != group_from):
            wrong.append(f"{FILES[e.source].relative_to(PROJECT_ROOT)}:{e.line}: {e.source} imports {e.target}")
    assert not wrong, "imports against the flow settings < ingest < index < service|eval < service.cli:\n" + \
        "\n".join(wrong)


def test_settings_is_a_leaf_and_nothing_imports_the_cli():
    assert not [e for e in EDGES if e.source == "settings"]
    into_cli = [f"{e.source}:{e.line}" for e in EDGES if layer(e.target)[1] == "cli" and layer(e.source)[1] != "cli"]
    assert not into_cli, f"modules importing the command line: {into_cli}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_even_through_deferred_imports():
    graph: dict[str, set[str]] = {name: set() for name in FILES}
    for e in EDGES:
        graph[e.source].add(e.target)
    assert _cycles(graph) == []


def _too_long_functions(tree: ast.AST) -> list[tuple[str, int]]:
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


@pytest.mark.parametrize("package", PACKAGES + LEAF_MODULES)
def test_modules_and_functions_are_small(package):
    problems = []
    for name, path in FILES.items():
        if name.split(".")[0] != package:
            continue
        rel = path.relative_to(PROJECT_ROOT)
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_MODULE_LINES})")
        problems += [f"{rel}: {fn}() is {n} lines (at most {MAX_FUNCTION_LINES})"
                     for fn, n in _too_long_functions(TREES[name])]
    assert not problems, "\n".join(problems)
