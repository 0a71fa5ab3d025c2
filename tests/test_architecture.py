"""The package's shape (issue #16): layers import only downward, no import cycle, each concept once.

`.importlinter` holds the layer contract; `lint-imports` checks it (grimp sees imports inside functions
too). The AST walk below is a second, independent check over *every* module, including the ones the
contract does not list (package ``__init__`` files) and ``importlib.import_module("grpo_course...")``
strings: it finds every strongly connected component of the import graph.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_course.paths import REPO_ROOT

SRC = REPO_ROOT / "src"


def import_graph(src: Path, package: str = "grpo_course") -> dict[str, set[str]]:
    """``{module: modules it imports}`` inside ``package``: top-level and function-level imports, relative
    ones resolved, ``from pkg import submodule`` counted as the submodule, import_module("...") strings too."""
    mods: dict[str, tuple[Path, bool]] = {}
    for path in (src / package).rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in mods else origin for a in node.names]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)):
                targets = [node.args[0].value]
            for target in targets:
                if target.split(".")[0] == package and (found := known(target)) and found != mod:
                    graph[mod].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "high.py").write_text("from toy import low\n\ndef g():\n    return low\n")
    (pkg / "side.py").write_text("import importlib\nimportlib.import_module('toy.high')\n")
    graph = import_graph(tmp_path, "toy")
    assert graph["toy.low"] == {"toy.high"} and graph["toy.side"] == {"toy.high"}
    assert cycles(graph) == [["toy.high", "toy.low"]]


def test_no_import_cycle_in_the_package():
    graph = import_graph(SRC)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk saw the package
    assert cycles(graph) == []


@pytest.mark.skipif(shutil.which("lint-imports") is None and not (REPO_ROOT / ".venv/bin/lint-imports").exists(),
                    reason="import-linter is not installed (pip install -r requirements.txt)")
def test_layer_contract_is_kept():
    exe = shutil.which("lint-imports") or str(REPO_ROOT / ".venv/bin/lint-imports")
    out = subprocess.run([exe, "--config", str(REPO_ROOT / ".importlinter")], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_every_module_has_a_layer():
    """A module the layer contract does not name is checked by nothing: each one sits in a layer itself or
    inside a package that does (``grpo_course.train`` covers ``grpo_course.train.pipeline``)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / ".importlinter")
    named = {m.strip() for line in cfg["importlinter:contract:layers"]["layers"].splitlines()
             for m in line.replace("|", ":").split(":") if m.strip()}
    assert "grpo_course.cli" in named and len(named) > 20
    packages = {m for m in import_graph(SRC) if (SRC / m.replace(".", "/") / "__init__.py").exists()}
    unnamed = [m for m in import_graph(SRC) if m not in packages
               and not any(m == n or m.startswith(n + ".") for n in named)]
    assert unnamed == [], f"add these to a layer in .importlinter: {unnamed}"


def _definitions(name: str) -> list[str]:
    found = []
    for path in sorted((SRC / "grpo_course").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level (methods may share a name)
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                found.append(str(path.relative_to(SRC)))
    return found


@pytest.mark.parametrize(("name", "where"), [
    ("pass_at_k", "grpo_course/metrics.py"),
    ("Comparison", "grpo_course/compare.py"),
    ("Task", "grpo_course/tasks/base.py"),
    ("generate_samples", "grpo_course/generation.py"),
    ("prompt_token_ids", "grpo_course/chat_format.py"),
    ("has_adapter", "grpo_course/generation.py"),
])
def test_each_concept_is_defined_once(name, where):
    # (lora.published has its own `Comparison` of parameter counts with published figures: another concept)
    found = [p for p in _definitions(name) if not (name == "Comparison" and p == "grpo_course/lora/published.py")]
    assert found == [where]


def test_one_generate_loop():
    """Only grpo_course.generation calls a model's ``generate`` (vLLM's fast_generate stays in gpu.py)."""
    calls = []
    for path in sorted((SRC / "grpo_course").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "generate" \
                    and ast.unparse(node.func.value) == "model":
                calls.append(str(path.relative_to(SRC)))
    assert calls == ["grpo_course/generation.py"]
