"""The layout rules of STYLE.md, checked on the source: no import cycle between modules
(imports inside functions and ``if TYPE_CHECKING:`` blocks count: callbacks type the
learner by a protocol instead), no module importing another's private names, no module
over 700 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("deepfit", "tabular", "collab", "text", "vision")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            name = pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"
            out[name] = path
    return out


def _imports(tree: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    """Every import statement, wherever it stands."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private = []
    for name, path in modules.items():
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                targets = [base]
                # `from pkg import module` imports the module.
                targets += [f"{base}.{a.name}" for a in node.names]
                if base.split(".")[0] in PACKAGES:
                    private += [
                        f"{name} imports {base}.{a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges, private


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_between_modules():
    edges, _ = _graph()
    # A package's __init__ imports its modules; a module importing its own package
    # (`from deepfit import X` inside deepfit/) would close a cycle through it.
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_no_module_imports_another_modules_private_names():
    _, private = _graph()
    assert not private, private


def test_the_engine_imports_no_domain_package():
    edges, _ = _graph()
    domains = [p for p in PACKAGES if p != "deepfit"]
    bad = [
        (m, t)
        for m, ts in edges.items()
        if m.split(".")[0] == "deepfit"
        for t in ts
        if t.split(".")[0] in domains
    ]
    assert not bad, bad


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_under_700_lines(name):
    n = len(_modules()[name].read_text().splitlines())
    assert n <= 700, f"{name} has {n} lines: a module that long holds two ideas"


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
