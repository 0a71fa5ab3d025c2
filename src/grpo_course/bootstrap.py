"""Notebook set-up: install the pinned GPU stack on Colab, check the runtime anywhere.

Every notebook's first code cell calls :func:`setup_runtime`. It must run before
torch is imported, so this module imports nothing heavy at top level.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .hardware import PROFILES, DeviceInfo, Profile, current_profile, describe, detect_device
from .paths import PACKAGE_DIR, REPO_ROOT

PINS_FILE = PACKAGE_DIR / "colab_pins.txt"


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def gpu_pins(profile_name: str) -> list[str]:
    """The pinned requirements for one GPU profile, read from ``colab_pins.txt``."""
    if profile_name not in PROFILES or PROFILES[profile_name].device != "cuda":
        raise ValueError(f"No GPU pin set for profile {profile_name!r}; GPU profiles: "
                         + ", ".join(n for n, p in PROFILES.items() if p.device == "cuda"))
    pins = []
    for line in PINS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        scope, requirement = line.split(None, 1)
        if scope == "all" or profile_name in scope.split(","):
            pins.append(requirement.strip())
    return pins


def missing_pins(pins: list[str]) -> list[str]:
    """The pins whose exact version is not installed in this interpreter."""
    missing = []
    for pin in pins:
        name, _, version = pin.partition("==")
        try:
            if metadata.version(name) != version:
                missing.append(pin)
        except metadata.PackageNotFoundError:
            missing.append(pin)
    return missing


# Tests set this to a folder to simulate Colab without installing anything: pip resolves with ``--dry-run``
# for Colab's Python and platform, and what it would install is recorded in that folder as package metadata
# (``<name>-<version>.dist-info``), so a second run on that folder sees it installed, as on Colab.
DRY_RUN_ENV = "GRPO_COURSE_PIP_DRY_RUN"
DRY_RUN_PYTHON_ENV = "GRPO_COURSE_PIP_PYTHON"  # the Python version the dry run resolves for (default 3.13)
_PIP_SHOWN = ("Collecting", "Downloading", "Installing", "Successfully", "Would install", "Attempting uninstall",
              "ERROR", "error:")


def _installed_versions() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if name:
            out.setdefault(name, dist.version)
    return out


def _dry_run_args(folder: Path, n: int, editable: bool) -> list[str]:
    args = ["--dry-run", "--ignore-installed", "--report", str(folder / f"pip-report-{n}.json")]
    if not editable:  # the GPU stack resolves for Colab's interpreter and platform, binary wheels only
        args += ["--only-binary=:all:", "--implementation", "cp",
                 "--python-version", os.environ.get(DRY_RUN_PYTHON_ENV, "3.13")]
        for tag in [f"manylinux_2_{minor}_x86_64" for minor in range(5, 40)] + ["manylinux2014_x86_64"]:
            args += ["--platform", tag]
    return args


def _record_dry_run(folder: Path, report: Path) -> list[str]:
    """Write a ``.dist-info`` with the name and version of each package the dry run would install."""
    import json

    installed = []
    for item in json.loads(report.read_text()).get("install", []):
        meta = item["metadata"]
        name, version = meta["name"], meta["version"]
        info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        installed.append(f"{name}=={version}")
    return installed


def run_pip(args: list[str], what: str, editable: bool = False) -> list[str]:
    """``pip install`` with its progress shown line by line (pip draws no bars outside a terminal).

    Returns what was installed (``name==version``) when pip says so; raises ``RuntimeError`` in plain
    words when pip fails. In the dry-run simulation (:data:`DRY_RUN_ENV`) nothing is installed.
    """
    import time

    folder = os.environ.get(DRY_RUN_ENV)
    report = None
    cmd = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", *args]
    if folder:
        folder_path = Path(folder)
        folder_path.mkdir(parents=True, exist_ok=True)
        n = len(list(folder_path.glob("pip-report-*.json")))
        report = folder_path / f"pip-report-{n}.json"
        cmd[4:4] = _dry_run_args(folder_path, n, editable)
    print(f"{what}: pip install {' '.join(a for a in args if not a.startswith('-'))}", flush=True)
    start, collected, installed = time.monotonic(), 0, []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-15:]
        if line.startswith("Collecting"):
            collected += 1
        if line.startswith(_PIP_SHOWN):
            print(f"  [{time.monotonic() - start:5.0f} s, {collected} packages] {line[:160]}", flush=True)
        if line.startswith("Successfully installed"):
            installed = line.split()[2:]
    if proc.wait() != 0:
        raise RuntimeError(f"pip could not install {what} (exit {proc.returncode}). Its last lines:\n"
                           + "\n".join(tail))
    if report is not None:
        installed = _record_dry_run(Path(folder), report)
    print(f"{what}: done in {time.monotonic() - start:.0f} s", flush=True)
    return installed


def restart_advice(before: dict[str, str], after: dict[str, str]) -> str | None:
    """Plain words when the install changed a package this kernel had already imported (e.g. torch)."""
    changed = {name for name, version in after.items() if before.get(name) not in (None, version)}
    if not changed:
        return None
    try:
        owners = metadata.packages_distributions()
    except Exception:  # pragma: no cover - very old importlib.metadata
        owners = {}
    loaded = set()
    for module in [m for m in list(sys.modules) if "." not in m]:
        for dist in owners.get(module, []):
            if dist.lower().replace("_", "-") in changed:
                loaded.add(dist.lower().replace("_", "-"))
    if not loaded:
        return None
    what = ", ".join(f"{n} {before[n]} -> {after[n]}" for n in sorted(loaded))
    return (f"RESTART NEEDED: this session had already imported {', '.join(sorted(loaded))} before the "
            f"install changed it ({what}), and Python keeps the old version in memory. Restart the session "
            f"(Runtime > Restart session), then run this cell again: it finds everything installed and goes on.")


def install_course(repo_dir: str | Path) -> list[str]:
    """``pip install -e`` the cloned course (console script ``grpo-course``), unless it is installed already."""
    try:
        metadata.version("grpo-course")
        return []
    except metadata.PackageNotFoundError:
        return run_pip(["--no-deps", "-e", str(repo_dir)], "the course package", editable=True)


def install_gpu_stack(profile: Profile) -> list[str]:
    """pip-install the profile's pins that are not already installed; returns what pip installed.

    Prints progress while pip works, and says in plain words to restart the session if the install
    changed a package that this kernel had already imported.
    """
    todo = missing_pins(gpu_pins(profile.name))
    if not todo:
        print(f"The {profile.name} GPU stack is installed: nothing to do.")
        return []
    before = _installed_versions()
    installed = run_pip(todo, f"the {profile.name} GPU stack")
    advice = restart_advice(before, _installed_versions())
    if advice:
        print(advice)
    return installed


@dataclass
class RuntimeCheck:
    profile: Profile
    reason: str
    device: DeviceInfo | None
    versions: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        lines = [describe(self.profile, self.reason)]
        if self.device is not None:
            lines.append(f"  gpu                    {self.device.name}, sm{self.device.compute_capability[0]}"
                         f"{self.device.compute_capability[1]}, {self.device.total_memory_gb:.1f} GB")
        lines.append("  versions               " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        if self.problems:
            lines.append("PROBLEMS:")
            lines.extend(f"  - {p}" for p in self.problems)
        else:
            lines.append("Runtime check: OK")
        return "\n".join(lines)


def check_runtime(profile: Profile, reason: str, device: DeviceInfo | None) -> RuntimeCheck:
    """Is this runtime fit for the profile? Collects plain-words advice, never raises."""
    check = RuntimeCheck(profile, reason, device)
    for name in ("torch", "transformers", "trl", "peft", "unsloth", "vllm"):
        try:
            check.versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if profile.device == "cuda" and device is None:
        check.problems.append(
            f"Profile {profile.name} needs a GPU but none is visible. On Colab: Runtime > Change runtime "
            f"type > T4 or L4 GPU. Locally: unset GRPO_COURSE_PROFILE to use cpu-tiny.")
    if device is not None:
        if profile.load_in_fp8 and not device.supports_fp8:
            check.problems.append(
                f"Profile {profile.name} loads FP8 weights, but {device.name} (sm"
                f"{device.compute_capability[0]}{device.compute_capability[1]}) has no FP8: Unsloth raises "
                f"'FP8 quantization is only supported on L4 and higher'. Use GRPO_COURSE_PROFILE=t4, "
                f"or pick an L4 runtime.")
        if profile.bf16 and not device.supports_bf16:
            check.problems.append(f"{device.name} has no bf16; the t4 profile computes in fp16 instead.")
        if profile.uses_vllm and device.compute_capability < (8, 0):
            check.problems.append(f"vLLM {check.versions.get('vllm', '>=0.12')} has no attention backend for "
                                  f"{device.name}; the t4 profile generates with transformers instead.")
    if profile.name == "cpu-tiny":
        from .hardware import model_dir_exists

        if not model_dir_exists(profile):
            check.problems.append(f"The tiny model is missing at {profile.model_id}; run `grpo-course build-tiny`.")
    return check


def setup_runtime(install: bool = True, verbose: bool = True) -> Profile:
    """Decide the profile; on Colab install the course and the profile's stack; print a fitness report.

    Never imports torch: on Colab the GPU is read with ``nvidia-smi``, so the pins are chosen (and torch
    replaced, where a profile must) before anything has loaded torch.
    """
    profile, reason = current_profile()
    device = None if profile.device == "cpu" else detect_device()
    if install and in_colab():
        install_course(REPO_ROOT)
        if profile.device == "cuda":
            install_gpu_stack(profile)
    check = check_runtime(profile, reason, device)
    if verbose:
        print(check.report())
    return profile


# The first code cell of every notebook, verbatim (tests/test_notebooks.py checks each notebook
# against it). On Colab it clones the course (or reuses the clone of an earlier run) and puts it on
# the path; setup_runtime() then installs it and the profile's pinned stack; locally it only checks
# that the package is installed.
COURSE_REPO = "https://github.com/grpo-course/grpo-course"
NOTEBOOK_SETUP_CELL = f'''\
# Set-up: on Colab this fetches the course and installs what your GPU needs; locally it checks the install.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("grpo_course") is None:
    if "google.colab" not in sys.modules and "COLAB_RELEASE_TAG" not in os.environ:
        raise ImportError("grpo_course is not installed: run `make setup` in the repository, "
                          "then pick the kernel of .venv (or `pip install -e .`).")
    if not os.path.isdir("grpo-course/.git"):  # a second run reuses the first run's clone
        subprocess.run(["git", "clone", "--depth=1", "{COURSE_REPO}", "grpo-course"], check=True)
    sys.path.insert(0, os.path.abspath("grpo-course/src"))
from grpo_course.bootstrap import setup_runtime
profile = setup_runtime()'''
