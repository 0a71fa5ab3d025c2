"""The Colab runtime the course targets, as Google publishes it, and the measured install plan for it.

``data/colab/`` records Colab's GPU images: ``os-info-gpu.txt`` and ``pip-freeze.gpu.txt`` copied unchanged
from the public repository ``googlecolab/backend-info`` (commit and date in ``runtime.json``), one folder per
Python version: 3.13 (the default runtime since 2026-08-25) and 3.12 (the last 3.12 image, the fallback a
learner can still select). :func:`runtime` reads one of them: the Python version, the glibc (which manylinux
wheels install there) and every preinstalled package with its version.

``requires.json`` adds the ``Requires-Dist`` of the preinstalled packages the course's install reaches, and
``install_plan.json`` what the set-up cell downloads and replaces per GPU profile; both are written by
``python -m grpo_course.colab_install`` (see that module). :func:`plan_table` renders the plan for notebook 00.

Standard library only: notebook 00 reads this before anything is installed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .paths import data_dir


def record_dir() -> Path:
    return data_dir() / "colab"


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name: ``Unsloth_Zoo`` -> ``unsloth-zoo``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_freeze(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``pip freeze`` output -> ({name: version}, {name: url}) with canonical names.

    ``name @ url`` lines take their version from the wheel or sdist file name in the URL; a URL without one
    (a git checkout) is kept in the second dict only.
    """
    versions: dict[str, str] = {}
    urls: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if " @ " in line:
            name, url = (part.strip() for part in line.split(" @ ", 1))
            urls[canonical_name(name)] = url
            filename = url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            match = re.match(r"[^-]+-(\d[^-]*?)(?:-|\.tar\.gz$|\.zip$)", filename)
            if match:
                versions[canonical_name(name)] = match.group(1)
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"unexpected pip freeze line: {raw!r}")
        versions[canonical_name(name)] = version.strip()
    return versions, urls


@dataclass(frozen=True)
class ColabRuntime:
    """One recorded Colab GPU image."""

    python: str  # "3.13": what pip's --python-version takes
    python_full: str  # "3.13.15", from os-info-gpu.txt
    os: str
    glibc: str
    commit: str
    date: str
    subject: str
    role: str
    packages: dict[str, str] = field(repr=False)  # canonical name -> version, as pip freeze printed it
    urls: dict[str, str] = field(repr=False)  # canonical name -> URL, for packages installed from one

    @property
    def source(self) -> str:
        return f"googlecolab/backend-info@{self.commit[:7]} ({self.date})"

    def version(self, name: str) -> str | None:
        return self.packages.get(canonical_name(name))

    def platform_tags(self) -> list[str]:
        """Every platform tag of a wheel pip installs there (x86_64, glibc ``self.glibc``)."""
        major, minor = (int(x) for x in self.glibc.split("."))
        assert major == 2, self.glibc
        tags = [f"manylinux_2_{m}_x86_64" for m in range(minor, 4, -1)]
        legacy = {"manylinux2014_x86_64": 17, "manylinux2010_x86_64": 12, "manylinux1_x86_64": 5}
        return tags + [tag for tag, needs in legacy.items() if needs <= minor] + ["linux_x86_64"]

    def pip_target_args(self) -> list[str]:
        """pip options that make a resolver on another machine choose the wheels this runtime would get."""
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for tag in self.platform_tags():
            args += ["--platform", tag]
        return args


def _read_json(name: str) -> dict:
    return json.loads((record_dir() / name).read_text(encoding="utf-8"))


def runtime_versions() -> list[str]:
    """The recorded Python versions, the default runtime's first."""
    meta = _read_json("runtime.json")
    return sorted(meta["runtimes"], key=lambda v: (v != meta["default"], v))


@cache
def runtime(python: str | None = None) -> ColabRuntime:
    """The recorded image for ``python`` ("3.13", "3.12"); None: Colab's default runtime."""
    meta = _read_json("runtime.json")
    python = python or meta["default"]
    if python not in meta["runtimes"]:
        raise KeyError(f"no recorded Colab runtime for Python {python}; recorded: {', '.join(meta['runtimes'])}")
    entry = meta["runtimes"][python]
    folder = record_dir() / entry["folder"]
    os_info = [line.strip() for line in (folder / "os-info-gpu.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    python_full = next(line.split()[1] for line in os_info if line.startswith("Python "))
    if not python_full.startswith(python + "."):
        raise ValueError(f"{folder}/os-info-gpu.txt says Python {python_full}, runtime.json files it under {python}")
    versions, urls = parse_freeze((folder / "pip-freeze.gpu.txt").read_text())
    return ColabRuntime(python=python, python_full=python_full, os=os_info[0], glibc=entry["glibc"],
                        commit=entry["commit"], date=entry["date"], subject=entry["subject"], role=entry["role"],
                        packages=versions, urls=urls)


def recorded_requires(rt: ColabRuntime) -> dict[str, list[str]]:
    """``Requires-Dist`` of the preinstalled packages the course's install reaches (``requires.json``):
    canonical name -> requirement strings. Packages absent here were not needed (see colab_install)."""
    path = record_dir() / "requires.json"
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))["runtimes"].get(rt.python, {})
    out = {}
    for name, entry in entries.items():
        if entry["version"] == rt.packages.get(name):  # a record for another version is stale: not used
            out[name] = list(entry["requires_dist"])
    return out


# ---------------------------------------------------------------------------------------- the install plan


def load_plan() -> dict:
    """The measured install plan (``data/colab/install_plan.json``)."""
    return _read_json("install_plan.json")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.0f}"


def plan_rows(plan: dict | None = None, python: str | None = None) -> list[dict]:
    """One row per GPU profile: downloads before/after (MB), how many packages the install brings, whether
    Colab's torch stays, and which preinstalled packages it replaces (``name old->new``)."""
    plan = plan or load_plan()
    python = python or plan["default_python"]
    colab_torch = runtime(python).version("torch")
    rows = []
    for profile, row in plan["runtimes"][python]["profiles"].items():
        new, old = row["now"], row["before"]
        if "torch" in new["replaces"]:
            torch = "{}->{}".format(*new["replaces"]["torch"])
        elif "torch" in new["install"]:
            torch = f"adds {new['install']['torch']}"
        else:
            torch = f"keeps {colab_torch}"
        rows.append({"profile": profile, "download MB (before)": _mb(old["download_bytes"]),
                     "download MB (now)": _mb(new["download_bytes"]), "packages": len(new["install"]),
                     "torch": torch,
                     "replaces": ", ".join(f"{n} {a}->{b}" for n, (a, b) in sorted(new["replaces"].items()))})
    return rows


def plan_table(plan: dict | None = None, python: str | None = None, width: int = 100) -> str:
    """The plan as plain text at most ``width`` characters wide: one line of figures per profile, then the
    preinstalled packages it replaces, wrapped between packages."""
    import textwrap

    plan = plan or load_plan()
    python = python or plan["default_python"]
    rows = plan_rows(plan, python)
    head = f"{'profile':<8} {'MB before':>10} {'MB now':>8} {'packages':>8}  torch"
    lines = [f"Colab Python {python} ({plan['runtimes'][python]['source']}), measured {plan['date']}:",
             "MB before: what the previous pins downloaded; MB now: what today's pins download",
             head, "-" * min(width, len(head) + 20)]
    indent = " " * 9
    for row in rows:
        lines.append(f"{row['profile']:<8} {row['download MB (before)']:>10} {row['download MB (now)']:>8} "
                     f"{row['packages']:>8}  {row['torch']}")
        items = row["replaces"].replace(" ", "\u00a0").replace(",\u00a0", ", ")  # wrap between packages only
        wrapped = textwrap.wrap("replaces: " + (items or "nothing"), width=width, initial_indent=indent,
                                subsequent_indent=indent + " " * 10, break_on_hyphens=False,
                                break_long_words=False)
        lines.extend(w.replace("\u00a0", " ") for w in wrapped)
    return "\n".join(line[:width] for line in lines)
