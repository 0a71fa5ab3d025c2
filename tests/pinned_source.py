"""Read the source of the pinned Colab GPU wheels without installing or importing them.

``pinned_wheel("unsloth")`` downloads the exact wheel that ``src/grpo_course/colab_pins.txt`` pins, or for a
package left unpinned the version Colab preinstalls (``data/colab/``), with ``pip download --no-deps
--only-binary=:all:`` for Colab's Python and platform (``colab_runtime``) once into
``~/.cache/grpo-course/wheels`` (``GRPO_COURSE_CACHE`` moves it), then reads modules straight out of
the zip; only the members asked for are decompressed (the vLLM wheel is 430 MB).

The AST helpers answer the questions the GPU contract tests ask: which parameters a function takes,
whether it reads a parameter, where a ``**kwargs`` keyword is consumed, which fields a dataclass (or
msgspec struct) has through its bases, and which function an attribute is bound to at run time.
"""

from __future__ import annotations

import ast
import fcntl
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from grpo_course import bootstrap
from grpo_course.colab_install import CACHE_DIR, pip_env  # noqa: F401 - pip_env: tests import it from here
from grpo_course.colab_runtime import runtime

WHEEL_DIR = CACHE_DIR / "wheels"


def platform_args() -> list[str]:
    """pip options for Colab's default runtime (Python 3.13, manylinux x86_64 up to glibc 2.35)."""
    return runtime().pip_target_args()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pinned_versions(profile: str = "l4") -> dict[str, str]:
    """Normalised name -> the version a Colab learner has after the set-up cell: the pin from ``colab_pins.txt``
    (l4 is the largest set), else the version Colab preinstalls (``data/colab/``)."""
    out = {_norm(name): version for name, version in runtime().packages.items()}
    for pin in bootstrap.gpu_pins(profile):
        name, _, version = pin.partition("==")
        out[_norm(name)] = version
    return out


def _find_cached(name: str, version: str) -> Path | None:
    for path in WHEEL_DIR.glob("*.whl"):
        dist, ver = path.name.split("-")[:2]
        if _norm(dist) == _norm(name) and ver == version:
            return path
    return None


def pinned_wheels(names, versions: dict[str, str] | None = None) -> dict[str, Path]:
    """The cached wheels of ``names`` at their pinned versions; the missing ones are fetched in one
    ``pip download`` (a lock keeps xdist workers from downloading them twice)."""
    versions = versions or pinned_versions()
    wanted = {name: versions[_norm(name)] for name in names}
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    found = {n: _find_cached(n, v) for n, v in wanted.items()}
    if all(found.values()):
        return found
    with open(WHEEL_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [f"{n}=={v}" for n, v in wanted.items() if not _find_cached(n, v)]
        if missing:
            with tempfile.TemporaryDirectory(dir=WHEEL_DIR, prefix=".download-") as tmp:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp,
                       *platform_args(), *missing]
                proc = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"pip download {' '.join(missing)} failed:\n{proc.stderr[-3000:]}")
                for wheel in Path(tmp).glob("*.whl"):
                    shutil.move(str(wheel), WHEEL_DIR / wheel.name)  # same filesystem: an atomic rename
    found = {n: _find_cached(n, v) for n, v in wanted.items()}
    absent = [n for n, path in found.items() if path is None]
    if absent:
        raise RuntimeError(f"pip download gave no wheel for {absent}")
    return found


def pinned_wheel(name: str, version: str | None = None) -> Path:
    """The cached wheel of one package at its pinned (or the given) version."""
    versions = pinned_versions()
    if version:
        versions[_norm(name)] = version
    return pinned_wheels([name], versions)[name]


# --------------------------------------------------------------------------- reading modules


class PinnedSource:
    """Modules of several pinned wheels, looked up by dotted name (``unsloth.models.loader``)."""

    PACKAGES = ("unsloth", "unsloth_zoo", "trl", "transformers", "peft", "vllm")

    def __init__(self, packages=PACKAGES):
        self.wheels = {p: zipfile.ZipFile(path) for p, path in pinned_wheels(packages).items()}
        self._trees: dict[str, ast.Module] = {}

    def version(self, package: str) -> str:
        return Path(self.wheels[package].filename).name.split("-")[1]

    def _member(self, dotted: str) -> tuple[zipfile.ZipFile, str]:
        top = dotted.split(".")[0]
        if top not in self.wheels:
            raise KeyError(f"{dotted}: package {top!r} is not among the pinned wheels read here")
        zf = self.wheels[top]
        base = dotted.replace(".", "/")
        names = set(zf.namelist())
        for candidate in (base + ".py", base + "/__init__.py"):
            if candidate in names:
                return zf, candidate
        raise KeyError(f"{dotted}: no such module in {Path(zf.filename).name}")

    def has_module(self, dotted: str) -> bool:
        try:
            self._member(dotted)
            return True
        except KeyError:
            return False

    def text(self, dotted: str) -> str:
        zf, member = self._member(dotted)
        return zf.read(member).decode("utf-8")

    def tree(self, dotted: str) -> ast.Module:
        if dotted not in self._trees:
            self._trees[dotted] = ast.parse(self.text(dotted))
        return self._trees[dotted]

    def is_package(self, dotted: str) -> bool:
        return self._member(dotted)[1].endswith("/__init__.py")

    # ----------------------------------------------------------------- definitions

    def find(self, dotted: str, qualname: str):
        """The ``FunctionDef``/``ClassDef`` for ``Class.method`` or ``function`` in a module."""
        node: ast.AST = self.tree(dotted)
        for part in qualname.split("."):
            body = getattr(node, "body", [])
            matches = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                       and n.name == part]
            if not matches:
                raise KeyError(f"{dotted}: no definition {qualname!r}")
            node = matches[-1]  # the last definition wins, as at run time
        return node

    def resolve_import(self, dotted: str, name: str) -> tuple[str, str]:
        """Where a name imported into module ``dotted`` is defined: (module, name)."""
        pkg = dotted if self.is_package(dotted) else dotted.rsplit(".", 1)[0]
        for node in ast.walk(self.tree(dotted)):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) != name:
                        continue
                    if node.level:
                        parts = pkg.split(".")
                        base = ".".join(parts[: len(parts) - node.level + 1])
                        module = f"{base}.{node.module}" if node.module else base
                    else:
                        module = node.module
                    return self._follow_reexport(module, alias.name)
        raise KeyError(f"{dotted}: {name!r} is not imported there")

    # Names a package's __init__ re-exports through a lazy-import table that the AST cannot follow.
    REEXPORTS = {("transformers", "TrainingArguments"): ("transformers.training_args", "TrainingArguments")}

    def _follow_reexport(self, module: str, name: str) -> tuple[str, str]:
        if (module, name) in self.REEXPORTS:
            return self.REEXPORTS[(module, name)]
        try:
            self.find(module, name)
            return module, name
        except KeyError:
            pass
        if self.has_module(module):
            return self.resolve_import(module, name)
        raise KeyError(f"cannot resolve {module}.{name}")


@dataclass(frozen=True)
class Params:
    """What a function's signature accepts."""

    positional: tuple[str, ...]  # positional-or-keyword, in order
    keyword_only: tuple[str, ...]
    var_positional: bool
    var_keyword: str | None  # the name of **kwargs, if any

    @property
    def names(self) -> set[str]:
        return set(self.positional) | set(self.keyword_only)


def params(func: ast.FunctionDef) -> Params:
    a = func.args
    return Params(tuple(x.arg for x in a.posonlyargs + a.args), tuple(x.arg for x in a.kwonlyargs),
                  a.vararg is not None, a.kwarg.arg if a.kwarg else None)


def reads_name(func: ast.AST, name: str) -> bool:
    """Does the function body read the variable ``name`` (a parameter that is actually used)?"""
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(func))


def kwargs_keys_read(func: ast.FunctionDef) -> set[str]:
    """Literal keys the function takes out of its ``**kwargs``: ``kwargs.get("k")``, ``.pop("k")``,
    ``kwargs["k"]``, ``"k" in kwargs``."""
    var = params(func).var_keyword
    keys: set[str] = set()
    if var is None:
        return keys
    for node in ast.walk(func):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == var
                and node.func.attr in ("get", "pop", "setdefault") and node.args
                and isinstance(node.args[0], ast.Constant)):
            keys.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == var
              and isinstance(node.slice, ast.Constant)):
            keys.add(node.slice.value)
        elif (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
              and any(isinstance(c, ast.Name) and c.id == var for c in node.comparators)):
            keys.add(node.left.value)
    return keys


def forwarding_calls(func: ast.FunctionDef) -> list[ast.Call]:
    """Calls in the body that pass the function's ``**kwargs`` on."""
    var = params(func).var_keyword
    return [n for n in ast.walk(func) if isinstance(n, ast.Call) and var is not None
            and any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == var for k in n.keywords)]


def call_keywords(call: ast.Call) -> set[str]:
    return {k.arg for k in call.keywords if k.arg is not None}


def calls_to(func: ast.AST, dotted_callee: str) -> list[ast.Call]:
    """Calls whose callee is spelled ``dotted_callee`` (``FastLlamaModel.get_peft_model``, ``LLM``)."""
    return [n for n in ast.walk(func) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted_callee]


# Bases from outside the pinned wheels that contribute no fields.
_FIELDLESS_BASES = {"TypedDict", "Generic", "Protocol", "ABC", "Enum", "str"}


def dataclass_fields(src: PinnedSource, module: str, cls: str) -> dict[str, ast.expr | None]:
    """Init fields of a dataclass or msgspec struct through its bases: name -> default expression.

    Skips ``ClassVar`` annotations and ``field(init=False)``; a subclass's field overrides its base's.
    """
    node = src.find(module, cls)
    fields: dict[str, ast.expr | None] = {}
    for base in node.bases:
        base_name = ast.unparse(base)
        if base_name in ("object", "msgspec.Struct", "PydanticMsgspecMixin") or "." in base_name:
            continue
        try:
            src.find(module, base_name)
            base_module = module
        except KeyError:
            try:
                base_module, base_name = src.resolve_import(module, base_name)
            except KeyError:
                if base_name in _FIELDLESS_BASES:
                    continue
                raise
        fields.update(dataclass_fields(src, base_module, base_name))
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(stmt.annotation):
            continue
        value = stmt.value
        if isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "dataclasses.field", "msgspec.field"):
            kws = {k.arg: k.value for k in value.keywords}
            if isinstance(kws.get("init"), ast.Constant) and kws["init"].value is False:
                continue
            value = kws.get("default")
        fields[stmt.target.id] = value
    return fields


def attribute_bindings(func_or_module: ast.AST, attribute: str) -> list[ast.expr]:
    """Right-hand sides of ``<something>.<attribute> = ...`` assignments."""
    out = []
    for node in ast.walk(func_or_module):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == attribute:
                    out.append(node.value)
    return out


def string_constants(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@lru_cache(maxsize=1)
def pinned_source() -> PinnedSource:
    return PinnedSource()
