"""requirements.txt and environment.yml pin the same packages; nothing heavy hides in the package import."""

import re
import subprocess
import sys

from grpo_course.paths import REPO_ROOT


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_matches_requirements():
    req = _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((REPO_ROOT / "environment.yml").read_text().splitlines())
    assert req, "no pins parsed from requirements.txt"
    assert req == env


def test_every_requirement_is_pinned_exactly():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s]+", line), f"not an exact pin: {line}"


def test_trl_pin_runs_on_cpu_and_fits_unsloth_caps():
    req = _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    # trl 1.15.0's GRPO log-prob head needs Triton (fails on CPU); Unsloth 2026.10.x caps trl <= 1.15.0.
    assert req["trl"] != "1.15.0"
    assert tuple(int(x) for x in req["trl"].split(".")) <= (1, 15, 0)
    assert tuple(int(x) for x in req["transformers"].split(".")) <= (5, 17, 0)


def test_import_is_light_and_gpu_free():
    code = ("import sys, grpo_course, grpo_course.hardware, grpo_course.bootstrap, grpo_course.cli; "
            "bad = [m for m in ('torch', 'unsloth', 'vllm') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
