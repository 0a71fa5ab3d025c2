"""Each Colab pin set in ``colab_pins.txt`` resolves with pip's resolver for Colab's platform.

pip runs ``install --dry-run --ignore-installed --only-binary=:all:`` for CPython 3.12 on manylinux
x86_64 (every manylinux tag 2_5 .. 2_39, manylinux2014/2010/1 and linux_x86_64), with ``--report``
to a temporary file. A conflict fails the test with the resolver's own message.

What this machine's pip setup must not change: pip config files are ignored (``PIP_CONFIG_FILE=
/dev/null``: here ``/etc/xdg/pip`` adds ``constraint = torch<=2.14.1`` and local wheel folders) and
machine-local ``PIP_*`` variables are dropped (``tests/pinned_source.pip_env``), so pip sees only the
package index, as on Colab. ``--use-feature=fast-deps`` reads each wheel's metadata with HTTP range
requests instead of downloading the whole wheel when the index serves no separate metadata files
(the CUDA wheels are gigabytes).

The distinct pin sets resolve in parallel (about 2.5 minutes on 2 cores with an empty cache). A
successful resolution is remembered under ``~/.cache/grpo-course/pin-resolution`` for
``GRPO_COURSE_PIN_CACHE_HOURS`` hours (default 6) for the same pins, pip and options; CI (``CI`` set)
always resolves afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pinned_source import CACHE_DIR, pip_env, platform_args

from grpo_course import bootstrap
from grpo_course.hardware import PROFILES

pytestmark = pytest.mark.xdist_group("colab-pins")  # the resolver tests run pip (network, slow)

GPU_PROFILES = [name for name, p in PROFILES.items() if p.device == "cuda"]
RESULT_CACHE = CACHE_DIR / "pin-resolution"


def _pip_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("pip")


def dry_run_command(pins: list[str], report: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", *platform_args(),
            "--use-feature=fast-deps", "--target", str(target), "--report", str(report),
            "--progress-bar", "off", *pins]


def _cache_hours() -> float:
    if os.environ.get("CI"):
        return 0.0
    return float(os.environ.get("GRPO_COURSE_PIN_CACHE_HOURS", "6"))


def resolve(pins: list[str]) -> dict:
    """Run the dry run (or reuse a fresh cached success); returns what the test inspects."""
    key = hashlib.sha256(json.dumps([pins, platform_args(), _pip_version()]).encode()).hexdigest()[:16]
    cached = RESULT_CACHE / f"{key}.json"
    if cached.exists() and time.time() - cached.stat().st_mtime < _cache_hours() * 3600:
        result = json.loads(cached.read_text())
        result["cached"] = True
        return result
    with tempfile.TemporaryDirectory(prefix="grpo-pins-") as tmp:
        report = Path(tmp) / "report.json"
        start = time.monotonic()
        proc = subprocess.run(dry_run_command(pins, report, Path(tmp) / "target"), env=pip_env(),
                              capture_output=True, text=True, timeout=1500)
        result = {"pins": pins, "returncode": proc.returncode, "seconds": round(time.monotonic() - start, 1),
                  "stderr": proc.stderr[-6000:], "cached": False, "install": {}}
        if proc.returncode == 0:
            data = json.loads(report.read_text())
            result["install"] = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
                                 for item in data["install"]}
            result["wheels"] = sorted(item["download_info"]["url"].rsplit("/", 1)[-1] for item in data["install"])
    if result["returncode"] == 0 and _cache_hours() > 0:
        RESULT_CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result


@pytest.fixture(scope="module")
def resolutions() -> dict[str, dict]:
    """profile -> resolution; profiles with identical pins share one run, distinct sets run in parallel."""
    sets: dict[tuple[str, ...], list[str]] = {}
    for name in GPU_PROFILES:
        sets.setdefault(tuple(bootstrap.gpu_pins(name)), []).append(name)
    with ThreadPoolExecutor(max_workers=len(sets)) as pool:
        futures = {pins: pool.submit(resolve, list(pins)) for pins in sets}
    out = {}
    for pins, names in sets.items():
        result = futures[pins].result()
        for name in names:
            out[name] = result
    for name, result in out.items():
        how = "cached" if result["cached"] else f"{result['seconds']} s"
        print(f"{name}: {len(result['install'])} packages ({how}): torch {result['install'].get('torch')}, "
              f"vllm {result['install'].get('vllm', '-')}")
    return out


def _canon(name: str) -> str:
    return name.lower().replace("_", "-")


@pytest.mark.parametrize("profile", GPU_PROFILES)
@pytest.mark.network
@pytest.mark.slow
def test_pin_set_resolves(resolutions, profile):
    result = resolutions[profile]
    assert result["returncode"] == 0, (
        f"The {profile} pin set does not resolve for CPython 3.12 / manylinux x86_64. pip says:\n"
        f"{result['stderr']}")
    install = result["install"]
    for pin in bootstrap.gpu_pins(profile):
        name, version = pin.split("==")
        assert install.get(_canon(name)) == version, f"{pin} resolved to {install.get(_canon(name))}"


@pytest.mark.parametrize("profile", GPU_PROFILES)
@pytest.mark.network
@pytest.mark.slow
def test_resolved_set_is_binary_and_fits_the_profile(resolutions, profile):
    result = resolutions[profile]
    assert result["returncode"] == 0, result["stderr"]
    assert all(w.endswith(".whl") for w in result["wheels"])
    install = result["install"]
    assert ("vllm" in install) == PROFILES[profile].uses_vllm
    assert "torch" in install and "triton" in install  # a CUDA build of torch, not a CPU one
    assert any(name.startswith("nvidia-") for name in install)


def test_dry_run_ignores_this_machines_pip_config():
    env = pip_env()
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert not {"PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"} & set(env)
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "constraint" not in out and "find-links" not in out and "extra-index-url" not in out
