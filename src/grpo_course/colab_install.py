"""What ``pip install <pins>`` does on the recorded Colab runtime: downloads, replacements, broken requirements.

pip on Colab keeps every installed package that satisfies the request (its default upgrade strategy,
only-if-needed), so a faithful simulation resolves *beside Colab's preinstalled set*, not into an empty folder:

1. :func:`fake_colab` makes a throwaway virtual environment with a local CPython of Colab's minor version (3.13
   or 3.12) and writes one ``.dist-info`` per package of the recorded ``pip freeze`` (``colab_runtime``): Name,
   Version and, for the packages the install reaches, Requires-Dist (``data/colab/requires.json``).
2. :func:`simulate` runs *Colab's own pip release* (24.1.2, run from its wheel) inside that environment:
   ``pip install --dry-run --report`` with Colab's Python version and platform tags (x86_64, glibc 2.35), binary
   wheels only, ``--use-feature=fast-deps`` (metadata by HTTP range requests where the index has no separate
   metadata file: the CUDA wheels are gigabytes). pip config files and this machine's ``PIP_*`` settings are
   left out (:func:`pip_env`), so pip sees the package index as Colab does.
3. From pip's report: what would be downloaded (the registry's file sizes, PEP 691 JSON) and which preinstalled
   packages it replaces (name: old -> new); :func:`broken_requirements` then computes what ``pip check`` would
   report afterwards for everything the course imports (its own imports, the pins, their dependencies, and the
   torch companions that are built for one torch without saying so in their metadata).

Not simulated: Colab may choose a source distribution where a newer one has no wheel (here: wheels only, and the
report is checked to hold wheels only); Colab's own pip configuration, if any, is not published.

``python -m grpo_course.colab_install requires`` refreshes ``requires.json``; ``... plan`` measures and writes
``install_plan.json`` (what notebook 00 shows). Both need the package index and local CPython 3.13 and 3.12.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import colab_runtime
from .bootstrap import gpu_pins
from .colab_runtime import ColabRuntime, canonical_name, record_dir
from .hardware import PROFILES
from .paths import REPO_ROOT

CACHE_DIR = Path(os.environ.get("GRPO_COURSE_CACHE") or Path.home() / ".cache" / "grpo-course")
GPU_PROFILES = [name for name, p in PROFILES.items() if p.device == "cuda"]

# pip settings that describe *this* machine rather than Colab's view of the index: dropped for the pip
# subprocesses (here a config file adds `constraint = torch<=2.14.1` and local wheel folders).
_PIP_ENV_KEEP = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_PROXY",
                 "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES", "PIP_DISABLE_PIP_VERSION_CHECK"}


def pip_env() -> dict[str, str]:
    """The environment for pip subprocesses: no pip config files, no machine-local PIP_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _PIP_ENV_KEEP}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _cache_hours() -> float:
    """How long a simulation result is reused (``GRPO_COURSE_PIN_CACHE_HOURS``, default 6; CI: never)."""
    if os.environ.get("CI"):
        return 0.0
    return float(os.environ.get("GRPO_COURSE_PIN_CACHE_HOURS", "6"))


# ------------------------------------------------------------------------------------------ tools


def local_python(version: str) -> str | None:
    """A CPython ``version`` ("3.13") on this machine: ``python3.13`` on PATH or a pyenv install; None if absent."""
    candidates = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.append(sys.executable)
    if found := shutil.which(f"python{version}"):
        candidates.append(found)
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{version}.*"), reverse=True)]
    for exe in candidates:
        try:
            out = subprocess.run([exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return exe
    return None


def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")  # noqa: SIM115 - closed by the caller's context manager
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def colab_pip(rt: ColabRuntime) -> Path:
    """Colab's pip release as a wheel (``python <wheel>/pip`` runs it), downloaded once into the cache."""
    version = rt.packages["pip"]
    wheel = CACHE_DIR / "wheels" / f"pip-{version}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    with _locked(CACHE_DIR / "wheels" / ".lock"):
        if not wheel.exists():
            with tempfile.TemporaryDirectory(dir=wheel.parent, prefix=".download-") as tmp:
                proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                       "--only-binary=:all:", "--dest", tmp, f"pip=={version}"],
                                      env=pip_env(), capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    raise RuntimeError(f"pip download pip=={version} failed:\n{proc.stderr[-2000:]}")
                shutil.move(str(next(Path(tmp).glob("pip-*.whl"))), wheel)
    return wheel


# --------------------------------------------------------------------------------- the fake Colab


def _metadata_text(name: str, version: str, requires: list[str] | None) -> str:
    """METADATA of a fake installed package. Provides-Extra is derived from the requirements' markers: pip
    ignores an extra the installed metadata does not declare (``fastapi[standard]`` would bring nothing)."""
    extras = sorted({m for r in requires or [] for m in re.findall(r"""extra\s*==\s*['"]([^'"]+)['"]""", r)})
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires or []]
    return "\n".join(lines) + "\n"


def fake_colab(rt: ColabRuntime, dest: Path, python: str) -> Path:
    """A virtual environment whose installed packages are Colab's (metadata only); returns its interpreter."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(dest)], check=True, capture_output=True, timeout=300)
    exe = dest / "bin" / "python"
    site = Path(subprocess.run([str(exe), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    requires = colab_runtime.recorded_requires(rt)
    for name, version in rt.packages.items():
        if name == "pip":  # pip runs from its own wheel, which carries its metadata
            continue
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(_metadata_text(name, version, requires.get(name)))
        (info / "INSTALLER").write_text("pip\n")
    return exe


# --------------------------------------------------------------------------------- file sizes


_SIZES_LOCK = threading.Lock()


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def project_files(name: str) -> dict[str, int]:
    """``{filename: size in bytes}`` of one project on the index (PEP 691 JSON, sizes per PEP 700)."""
    request = urllib.request.Request(f"{_index_url()}/{canonical_name(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the package index
        data = json.load(response)
    return {f["filename"]: int(f["size"]) for f in data["files"] if f.get("size") is not None}


def file_size(name: str, filename: str) -> int:
    """The size of one distribution file, from the index; remembered in the cache (a file never changes)."""
    path = CACHE_DIR / "colab-install" / "sizes.json"
    with _SIZES_LOCK:
        sizes = json.loads(path.read_text()) if path.exists() else {}
        if filename not in sizes:
            files = project_files(name)
            if filename not in files:
                raise RuntimeError(f"the index lists no file {filename} for {name}")
            sizes.update(files)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sizes, sort_keys=True))
            tmp.replace(path)
        return sizes[filename]


# --------------------------------------------------------------------------------- the simulation


@dataclass
class Simulation:
    """What ``pip install <pins>`` would do on one recorded Colab runtime."""

    pins: list[str]
    python: str
    returncode: int
    stderr: str
    seconds: float
    cached: bool = False
    install: dict[str, dict] = field(default_factory=dict)  # name -> {version, filename, size, requires_dist}

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def download_bytes(self) -> int:
        return sum(item["size"] for item in self.install.values())

    def replaces(self, rt: ColabRuntime) -> dict[str, tuple[str, str]]:
        """Preinstalled packages this install changes: name -> (Colab's version, the new one)."""
        return {name: (rt.packages[name], item["version"]) for name, item in sorted(self.install.items())
                if name in rt.packages}

    def versions(self) -> dict[str, str]:
        return {name: item["version"] for name, item in self.install.items()}


SIMULATION_FORMAT = 2  # bump when the fake environment changes, so cached results are not reused


def _simulation_key(pins: list[str], rt: ColabRuntime) -> str:
    """Same pins, same recorded runtime (its packages and their recorded requirements), same pip: same result."""
    requires = colab_runtime.recorded_requires(rt)
    record = json.dumps([SIMULATION_FORMAT, pins, rt.python, rt.commit, sorted(rt.packages.items()),
                         sorted(requires.items())])
    return hashlib.sha256(record.encode()).hexdigest()[:16]


def simulate(pins: list[str], rt: ColabRuntime, python: str | None = None) -> Simulation:
    """Run Colab's pip in dry-run mode on a fake Colab (or reuse a fresh cached success)."""
    cache = CACHE_DIR / "colab-install" / f"{_simulation_key(pins, rt)}.json"
    if cache.exists() and time.time() - cache.stat().st_mtime < _cache_hours() * 3600:
        data = json.loads(cache.read_text())
        return Simulation(**{**data, "cached": True})
    python = python or local_python(rt.python)
    if python is None:
        raise RuntimeError(f"no CPython {rt.python} on this machine to simulate Colab's Python {rt.python_full}")
    pip_wheel = colab_pip(rt)
    with tempfile.TemporaryDirectory(prefix=f"colab-{rt.python}-") as tmp:
        exe = fake_colab(rt, Path(tmp) / "env", python)
        report = Path(tmp) / "report.json"
        cmd = [str(exe), str(pip_wheel / "pip"), "install", "--dry-run", "--report", str(report),
               "--progress-bar", "off", "--use-feature=fast-deps", *rt.pip_target_args(), *pins]
        start = time.monotonic()
        proc = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=1500, cwd=tmp)
        sim = Simulation(pins=list(pins), python=rt.python, returncode=proc.returncode, stderr=proc.stderr[-6000:],
                         seconds=round(time.monotonic() - start, 1))
        if proc.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                meta = item["metadata"]
                filename = item["download_info"]["url"].rsplit("/", 1)[-1]
                name = canonical_name(meta["name"])
                sim.install[name] = {"version": meta["version"], "filename": filename,
                                     "size": file_size(name, filename),
                                     "requires_dist": list(meta.get("requires_dist", []))}
    if sim.ok and _cache_hours() > 0:
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in sim.__dict__.items() if k != "cached"}
        cache.write_text(json.dumps(data))
    return sim


def simulate_many(jobs: list[tuple[list[str], ColabRuntime]], workers: int = 2) -> list[Simulation]:
    """Several simulations, ``workers`` at a time (pip is mostly waiting on the network); a job that repeats
    another (same pins, same runtime) shares its result."""
    distinct = list({(tuple(pins), rt.python): (pins, rt) for pins, rt in jobs}.values())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip([(tuple(p), rt.python) for p, rt in distinct], pool.map(lambda j: simulate(*j), distinct)))
    return [results[tuple(pins), rt.python] for pins, rt in jobs]


# ------------------------------------------------------------------------- what `pip check` would say


# Top-level modules whose distribution has another name (the course's imports, see course_distributions).
MODULE_DISTRIBUTIONS = {"IPython": "ipython", "math_verify": "math-verify", "google.genai": "google-genai",
                        "google.colab": "google-colab", "yaml": "pyyaml", "PIL": "pillow",
                        "sklearn": "scikit-learn"}
# Imported by the course but not meant for Colab: the reason is the allowance.
NOT_FOR_COLAB = {"deepspeed": "stage 06's ZeRO configs: validated on CPU, trained on multi-GPU machines, not on Colab"}
# Built for one torch release without a Requires-Dist on it (torchvision's metadata says it; these do not):
# Unsloth checks torchvision and torchcodec against torch at import, transformers imports them for processors.
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
# torch minor -> torchcodec minors built for it (torchcodec >= 0.12 is ABI-stable for torch >= 2.11). Source:
# unsloth 2026.10.7, unsloth/import_fixes.py `_TORCH_TORCHCODEC_MINORS` ("torchcodec ships no Requires-Dist:
# torch, so pip cannot catch a mismatch").
TORCHCODEC_FOR_TORCH = {"2.11": {"0.11"}, "2.10": {"0.10"}, "2.9": {"0.8", "0.9"}, "2.8": {"0.6", "0.7"}}


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def abi_mismatch(name: str, version: str, torch_version: str) -> str | None:
    """Why ``name`` ``version`` cannot run beside torch ``torch_version`` although pip would not say so."""
    torch_mm = ".".join(map(str, _release(torch_version)[:2]))
    mm = ".".join(map(str, _release(version)[:2]))
    if name == "torchaudio" and mm != torch_mm:  # torchaudio releases in lockstep with torch (2.11 <-> 2.11)
        return f"built for torch {mm}"
    if name == "torchcodec":
        if _release(version)[:2] >= (0, 12) and _release(torch_version)[:2] >= (2, 11):
            return None
        if mm not in TORCHCODEC_FOR_TORCH.get(torch_mm, set()):
            built_for = sorted(t for t, codecs in TORCHCODEC_FOR_TORCH.items() if mm in codecs)
            return f"built for torch {' or '.join(built_for) or 'another release'}"
    return None


@dataclass(frozen=True)
class Broken:
    """One requirement that is not met after the install."""

    package: str  # "torchvision 0.26.0+cu128"
    requirement: str  # "torch==2.11.0", or for a binary mismatch "built for torch 2.11"
    found: str | None  # the version present, None if absent
    abi: bool = False  # a binary built for another torch, which its metadata does not say

    def __str__(self) -> str:
        if self.abi:
            return f"{self.package} is {self.requirement}, but torch is {self.found}"
        return f"{self.package} requires {self.requirement}, but {'has ' + self.found if self.found else 'it is absent'}"


@dataclass
class CheckResult:
    broken: list[Broken]  # broken by the install (absent or met before it)
    already: list[Broken]  # broken on Colab as it is, before the install (Colab's own, e.g. IPython without jedi)
    checked: list[str]  # name==version of every distribution in the closure
    unknown: list[str]  # preinstalled distributions in the closure whose Requires-Dist is not recorded
    missing: list[str]  # roots that are not installed at all after the install


def marker_environment(rt: ColabRuntime) -> dict[str, str]:
    return {"python_version": rt.python, "python_full_version": rt.python_full, "implementation_name": "cpython",
            "implementation_version": rt.python_full, "platform_python_implementation": "CPython",
            "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
            "platform_release": "", "platform_version": "", "extra": ""}


def after_install(sim: Simulation, rt: ColabRuntime) -> dict[str, tuple[str, list[str] | None]]:
    """name -> (version, Requires-Dist or None where unrecorded) of every package once the install is done."""
    recorded = colab_runtime.recorded_requires(rt)
    env = {name: (version, recorded.get(name)) for name, version in rt.packages.items()}
    for name, item in sim.install.items():
        env[name] = (item["version"], item["requires_dist"])
    return env


def _unmet(env: dict[str, tuple[str, list[str] | None]], rt: ColabRuntime, roots: list[str]):
    """Walk the requirements from ``roots`` through ``env``: (unmet, checked, unknown, missing)."""
    from packaging.requirements import Requirement

    base_env = marker_environment(rt)
    todo = [(canonical_name(Requirement(r).name), frozenset(Requirement(r).extras)) for r in roots]
    seen: dict[str, set[str]] = {}
    broken, unknown, missing = [], [], []
    while todo:
        name, extras = todo.pop()
        if name not in env:
            if name not in seen:
                missing.append(name)
                seen[name] = set()
            continue
        done = seen.setdefault(name, set())
        wanted = ({""} | set(extras)) - done
        if not wanted:
            continue
        done |= wanted
        version, requires = env[name]
        if requires is None:
            unknown.append(f"{name}=={version}")
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({**base_env, "extra": e}) for e in wanted):
                continue
            dep = canonical_name(req.name)
            found = env.get(dep, (None, None))[0]
            if found is None or not req.specifier.contains(found, prereleases=True):
                broken.append(Broken(f"{name} {version}", str(req).split(";")[0], found))
            if found is not None:
                todo.append((dep, frozenset(req.extras)))
    torch = env.get("torch", (None, None))[0]
    for name in TORCH_COMPANIONS:
        if torch and name in env and name in seen and (why := abi_mismatch(name, env[name][0], torch)):
            broken.append(Broken(f"{name} {env[name][0]}", why, torch, abi=True))
    checked = sorted(f"{n}=={env[n][0]}" for n in seen if n in env)
    return set(broken), checked, sorted(set(unknown)), sorted(missing)


def broken_requirements(sim: Simulation, rt: ColabRuntime, roots: list[str]) -> CheckResult:
    """What ``pip check`` would report after the install, for ``roots`` and everything they require.

    A requirement Colab's image already leaves unmet (before any install, the same walk) is reported apart, in
    ``already``: it is Colab's, not the install's."""
    after, checked, unknown, missing = _unmet(after_install(sim, rt), rt, roots)
    before_env = after_install(Simulation([], rt.python, 0, "", 0.0), rt)
    before = _unmet(before_env, rt, [r for r in roots if canonical_name(r.split("==")[0]) in before_env])[0]
    return CheckResult(sorted(after - before, key=str), sorted(after & before, key=str), checked, unknown, missing)


def _imports_of(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            lines += [line for line in src.splitlines() if not line.lstrip().startswith(("!", "%"))]
    return "\n".join(lines)


def course_distributions(repo: Path = REPO_ROOT) -> list[str]:
    """The distributions whose modules the package and the notebooks import (outside the standard library)."""
    modules: set[str] = set()
    for path in sorted((repo / "src" / "grpo_course").rglob("*.py")):
        modules |= _imports_of(path.read_text(encoding="utf-8"))
    for path in sorted((repo / "notebooks").glob("*.ipynb")):
        modules |= _imports_of(_notebook_code(path))
    dists = set()
    for module in modules:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in ("grpo_course", "__future__"):
            continue
        two = ".".join(module.split(".")[:2])
        dists.add(MODULE_DISTRIBUTIONS.get(two) or MODULE_DISTRIBUTIONS.get(top) or canonical_name(top))
    dists.discard("google")  # a namespace: google.genai / google.colab are named above
    return sorted(dists)


def check_roots(pins: list[str]) -> list[str]:
    """What must be importable after the install: the pins, the course's imports, torch's companions.

    vLLM counts only where the pins install it (the course imports it only on the profiles that use it)."""
    from packaging.requirements import Requirement

    pinned = {canonical_name(Requirement(p).name) for p in pins}
    courses = [d for d in course_distributions() if d not in NOT_FOR_COLAB and (d != "vllm" or d in pinned)]
    return sorted(set(pins) | set(courses) | set(TORCH_COMPANIONS))


# ---------------------------------------------------------------------------- maintainer commands


def _pin_sets(extra: list[list[str]] = ()) -> list[list[str]]:
    sets: list[list[str]] = []
    for pins in [gpu_pins(p) for p in GPU_PROFILES] + list(extra):
        if pins not in sets:
            sets.append(pins)
    return sets


def _read_metadata(python: str, pip_wheel: Path, specs: list[str], target_args: list[str]) -> dict[str, dict]:
    """name -> pip's report item for each spec, read by pip (``--no-deps`` dry run: metadata only)."""
    with tempfile.TemporaryDirectory(prefix="colab-requires-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [python, str(pip_wheel / "pip"), "install", "--dry-run", "--no-deps", "--ignore-installed",
               "--report", str(report), "--quiet", "--use-feature=fast-deps", *target_args, *specs]
        proc = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=1800, cwd=tmp)
        if proc.returncode != 0:
            raise _MetadataError(proc.stderr)
        return {canonical_name(i["metadata"]["name"]): i for i in json.loads(report.read_text())["install"]}


class _MetadataError(RuntimeError):
    pass


def _fetch_requires(rt: ColabRuntime, names: list[str]) -> dict[str, dict]:
    """Requires-Dist of preinstalled packages at Colab's versions, read from the index by pip (metadata only).

    Wheels for Colab's Python and platform where the index has one, else the source distribution (pip builds its
    metadata). A build with a local version (``torch 2.11.0+cu128``, from PyTorch's own index, which is not
    reachable here) takes the requirements of the index's build of the same release without its CUDA libraries
    (``nvidia-*``, ``cuda-*``): those belong to the build, and the install must leave them alone anyway. A package
    Colab installed from elsewhere (``google-colab`` from a local file) is recorded with no requirements."""
    python = local_python(rt.python)
    if python is None:
        raise RuntimeError(f"no CPython {rt.python} here")
    out = {}
    for name in [n for n in names if n in rt.urls and "pythonhosted.org" not in rt.urls[n]]:
        out[name] = {"version": rt.packages[name], "requires_dist": [],
                     "source": f"installed from {rt.urls[name]}: not on the index, requirements not recorded"}
    specs = {n: f"{n}=={rt.packages[n].split('+')[0]}" for n in names if n not in out}
    binary, sdist, items = dict(specs), {}, {}
    while binary:
        try:
            items.update(_read_metadata(python, colab_pip(rt), list(binary.values()), rt.pip_target_args()))
            break
        except _MetadataError as err:
            no_wheel = re.findall(r"No matching distribution found for (\S+)", str(err))
            if not no_wheel:
                raise RuntimeError(f"reading metadata failed:\n{str(err)[-3000:]}") from None
            for spec in no_wheel:
                name = canonical_name(spec.split("==")[0])
                sdist[name] = binary.pop(name)
    if sdist:
        items.update(_read_metadata(python, colab_pip(rt), list(sdist.values()), []))
    for name, item in items.items():
        colab_version = rt.packages[name]
        requires = list(item["metadata"].get("requires_dist", []))
        source = item["download_info"]["url"].rsplit("/", 1)[-1]
        if "+" in colab_version:
            requires = [r for r in requires if not re.match(r"(nvidia|cuda)[-_]", r, re.I)]
            source = f"{source} without its CUDA libraries (Colab has the +{colab_version.split('+')[1]} build)"
        out[name] = {"version": colab_version, "requires_dist": requires, "source": source}
    return out


def update_requires(extra_pin_sets: list[list[str]] = (), rounds: int = 8) -> dict:
    """Record the Requires-Dist of every preinstalled package the pin sets' installs reach (``requires.json``).

    Repeats simulate -> closure -> fetch until no package in any closure lacks a record (each round can reveal
    dependencies of the packages just recorded)."""
    path = record_dir() / "requires.json"
    data = json.loads(path.read_text()) if path.exists() else {"runtimes": {}}
    for python in colab_runtime.runtime_versions():
        rt = colab_runtime.runtime(python)
        for _ in range(rounds):
            sims = simulate_many([(pins, rt) for pins in _pin_sets(extra_pin_sets)])
            failed = [sim for sim in sims if not sim.ok]
            if failed:
                raise RuntimeError(f"{failed[0].pins} does not resolve on Colab {python}:\n{failed[0].stderr}")
            fetched = 0
            while need := sorted({u.split("==")[0] for sim in sims
                                  for u in broken_requirements(sim, rt, check_roots(sim.pins)).unknown}):
                print(f"Python {python}: reading the metadata of {len(need)} preinstalled packages", flush=True)
                data["runtimes"].setdefault(python, {}).update(_fetch_requires(rt, need))
                data["runtimes"][python] = dict(sorted(data["runtimes"][python].items()))
                data.update({"date": _dt.date.today().isoformat(), "note": (
                    "Requires-Dist of the preinstalled packages that the course's install reaches, per Colab "
                    "runtime, read from the package index by `python -m grpo_course.colab_install requires`.")})
                path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
                fetched += len(need)
            if not fetched:  # the simulations ran with every requirement they reach recorded
                break
        else:
            raise RuntimeError("the Requires-Dist closure did not settle")
    return data


def _row(sim: Simulation, rt: ColabRuntime) -> dict:
    if not sim.ok:
        raise RuntimeError(f"{sim.pins} does not resolve on Colab {rt.python}:\n{sim.stderr}")
    check = broken_requirements(sim, rt, check_roots(sim.pins))
    return {"pins": sim.pins, "download_bytes": sim.download_bytes,
            "install": {n: sim.install[n]["version"] for n in sorted(sim.install)},
            "files": {n: [sim.install[n]["filename"], sim.install[n]["size"]] for n in sorted(sim.install)},
            "replaces": {n: list(v) for n, v in sim.replaces(rt).items()},
            "broken": [str(b) for b in check.broken], "already_broken_on_colab": [str(b) for b in check.already]}


def measure_plan(before: dict[str, list[str]]) -> dict:
    """Per Colab runtime and GPU profile: the current pins' install beside the ``before`` pins' install."""
    plan = {"date": _dt.date.today().isoformat(), "default_python": colab_runtime.runtime_versions()[0],
            "pip": None, "method": ("pip " + "install --dry-run --report on a fake Colab (grpo_course.colab_install); "
                                    "sizes from the index's file list"), "runtimes": {}}
    for python in colab_runtime.runtime_versions():
        rt = colab_runtime.runtime(python)
        plan["pip"] = rt.packages["pip"]
        jobs = [(gpu_pins(p), rt) for p in GPU_PROFILES] + [(before[p], rt) for p in GPU_PROFILES]
        sims = simulate_many(jobs, workers=4)
        now, old = sims[: len(GPU_PROFILES)], sims[len(GPU_PROFILES):]
        plan["runtimes"][python] = {"python_full": rt.python_full, "source": rt.source, "profiles": {
            p: {"now": _row(n, rt), "before": _row(o, rt)} for p, n, o in zip(GPU_PROFILES, now, old)}}
    return plan


def plan_path() -> Path:
    return record_dir() / "install_plan.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grpo_course.colab_install", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("requires", help="refresh data/colab/requires.json (the preinstalled packages' Requires-Dist)")
    p = sub.add_parser("plan", help="measure downloads and replacements per profile into data/colab/install_plan.json")
    p.add_argument("--before", type=Path, help="a colab_pins.txt to compare with (default: the plan's own 'before')")
    sub.add_parser("show", help="print the committed plan")
    args = parser.parse_args(argv)
    if args.command == "requires":
        data = update_requires()
        print(", ".join(f"Python {py}: {len(entries)} packages" for py, entries in data["runtimes"].items()))
    elif args.command == "plan":
        if args.before:
            before = {p: _read_pins(args.before, p) for p in GPU_PROFILES}
        else:
            old = colab_runtime.load_plan()["runtimes"][colab_runtime.runtime_versions()[0]]["profiles"]
            before = {p: old[p]["before"]["pins"] for p in GPU_PROFILES}
        plan = measure_plan(before)
        plan_path().write_text(json.dumps(plan, indent=1) + "\n")
        for python in plan["runtimes"]:
            print(colab_runtime.plan_table(plan, python))
    else:
        for python in colab_runtime.load_plan()["runtimes"]:
            print(colab_runtime.plan_table(python=python))
    return 0


def _read_pins(path: Path, profile: str) -> list[str]:
    """The pins of one profile in a file of colab_pins.txt's format."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            scope, requirement = line.split(None, 1)
            if scope == "all" or profile in scope.split(","):
                pins.append(requirement.strip())
    return pins


if __name__ == "__main__":
    sys.exit(main())
