"""The layering of docs/architecture.md holds in the code: what each package may import (lazy imports included),
no import cycle inside a package, and every public entry point the page lists exists."""

from __future__ import annotations

import ast
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("rewards", "data_pipeline", "verirl")
#: third-party packages a package must never import
FORBIDDEN = {"rewards": {"torch", "trl", "transformers"}, "data_pipeline": set(), "verirl": set()}


def _doc_sections() -> dict[str, str]:
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        text = fh.read()
    parts = re.split(r"^### `(\w+)`\s*$", text, flags=re.MULTILINE)
    return {name: body.split("\n## ")[0] for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _allowed() -> dict[str, set[str]]:
    """What docs/architecture.md says each package may import (its `May import:` line)."""
    allowed = {}
    for name, body in _doc_sections().items():
        line = re.search(r"^May import: (.*)$", body, flags=re.MULTILINE).group(1)
        allowed[name] = set(re.findall(r"`(\w+)`", line.split(";")[0]))
    return allowed


def _modules(package: str) -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[module.removesuffix(".__init__")] = path
    return out


def _imports(module: str, path: str) -> set[str]:
    """Every module named by an import statement of the file, at any depth (lazy imports included)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_the_page_states_the_one_way_layering():
    assert _allowed() == {"rewards": set(), "data_pipeline": {"rewards"}, "verirl": {"data_pipeline", "rewards"}}


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_page_allows(package):
    allowed = _allowed()[package] | {package}
    bad = []
    for module, path in sorted(_modules(package).items()):
        for name in _imports(module, path):
            top = name.split(".")[0]
            if (top in PACKAGES and top not in allowed) or top in FORBIDDEN[package]:
                bad.append(f"{module} imports {name}")
    assert not bad, f"{package} may import only {sorted(allowed)} (docs/architecture.md): " + "; ".join(bad)


def _edges(module: str, path: str, modules: dict[str, str]) -> set[str]:
    """The modules of the same package that ``module`` imports at run time (``from pkg import sub`` imports
    ``pkg.sub``, and ``pkg`` itself only when a name is not a submodule; imports under ``if TYPE_CHECKING:`` do
    not count)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    names = []
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run: annotations only
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            names += subs + ([target] if len(subs) < len(node.names) else [])
    edges = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(package):
    modules = _modules(package)
    graph = {module: _edges(module, path, modules) for module, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            pytest.fail(f"import cycle in {package} (lazy imports count): {' -> '.join(cycle)}")


def test_every_listed_entry_point_exists():
    missing = []
    for package, body in _doc_sections().items():
        entries = re.findall(rf"`({package}(?:\.\w+)+)", body.split("Public entry points:")[1])
        assert entries, f"docs/architecture.md lists no entry point of {package}"
        for dotted in entries:
            module_name, attr = dotted, None
            while True:
                try:
                    module = importlib.import_module(module_name)
                    break
                except ModuleNotFoundError:
                    module_name, _, last = module_name.rpartition(".")
                    attr = last if attr is None else f"{last}.{attr}"
            target = module
            for part in (attr.split(".") if attr else []):
                target = getattr(target, part, None)
            if target is None:
                missing.append(dotted)
    assert not missing, f"docs/architecture.md lists entry points that do not exist: {missing}"
