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

from .hardware import PROFILES, DeviceInfo, Profile, current_profile, describe, detect_device
from .paths import PACKAGE_DIR

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


def install_gpu_stack(profile: Profile) -> list[str]:
    """pip-install the profile's pins that are not already installed; returns what it installed."""
    todo = missing_pins(gpu_pins(profile.name))
    if todo:
        print(f"Installing the {profile.name} GPU stack (a few minutes): {' '.join(todo)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *todo], check=True)
    return todo


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
    """Decide the profile, install the GPU stack on Colab if needed, print a fitness report."""
    profile, reason = current_profile()
    device = None if profile.device == "cpu" else detect_device()
    if install and in_colab() and profile.device == "cuda":
        install_gpu_stack(profile)
    check = check_runtime(profile, reason, device)
    if verbose:
        print(check.report())
    return profile


# The first code cell of every notebook, verbatim (tests/test_notebooks.py checks each notebook
# against it). On Colab it clones and installs the course, then setup_runtime() installs the
# profile's pinned GPU stack; locally it only checks that the package is installed.
COURSE_REPO = "https://github.com/grpo-course/grpo-course"
NOTEBOOK_SETUP_CELL = f'''\
# Set-up: on Colab this installs the course and its pinned GPU stack; locally it checks the install.
import importlib.util, subprocess, sys
if importlib.util.find_spec("grpo_course") is None:
    if "google.colab" not in sys.modules:
        raise ImportError("grpo_course is not installed: run `make setup` in the repository, "
                          "then pick the kernel of .venv (or `pip install -e .`).")
    subprocess.run(["git", "clone", "--depth=1", "{COURSE_REPO}", "grpo-course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "grpo-course"], check=True)
    sys.path.insert(0, "grpo-course/src")
from grpo_course.bootstrap import setup_runtime
profile = setup_runtime()'''
