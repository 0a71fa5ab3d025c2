"""Notebook set-up: GPU pin sets per profile, the runtime fitness check, and the set-up cell on a simulated Colab."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_course import bootstrap, hardware
from grpo_course.hardware import DeviceInfo


def test_pin_sets_differ_only_where_gpus_must():
    t4, l4 = bootstrap.gpu_pins("t4"), bootstrap.gpu_pins("l4")
    assert not any(p.startswith("vllm") for p in t4)
    assert any(p.startswith("vllm==") for p in l4)
    assert set(t4) < set(l4)
    assert all("==" in p for p in l4)


def test_gpu_pins_share_trl_and_transformers_with_cpu_set():
    cpu = {}
    for line in (hardware.REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            cpu[name] = version
    for pin in bootstrap.gpu_pins("l4"):
        name, version = pin.split("==")
        if name == "torch":  # the one deliberate difference: CPU wheel 2.13.0, vLLM 0.19.1 needs 2.10.0
            continue
        if name in cpu:
            assert cpu[name] == version, f"{name}: CPU pins {cpu[name]}, Colab pins {version}"


def test_no_pins_for_cpu_profile():
    with pytest.raises(ValueError, match="GPU profiles"):
        bootstrap.gpu_pins("cpu-tiny")


def test_missing_pins_detects_wrong_versions():
    assert bootstrap.missing_pins(["pytest==0.0.1", "surely-not-a-package==1.0"]) == [
        "pytest==0.0.1", "surely-not-a-package==1.0"]


def test_runtime_check_explains_fp8_on_a_t4():
    l4 = hardware.PROFILES["l4"]
    check = bootstrap.check_runtime(l4, "forced", DeviceInfo("Tesla T4", (7, 5), 14.74))
    assert not check.ok
    text = check.report()
    assert "FP8" in text and "GRPO_COURSE_PROFILE=t4" in text


def test_runtime_check_gpu_profile_without_gpu():
    check = bootstrap.check_runtime(hardware.PROFILES["t4"], "forced", None)
    assert any("needs a GPU" in p for p in check.problems)


def test_runtime_check_ok_for_t4_on_t4():
    check = bootstrap.check_runtime(hardware.PROFILES["t4"], "detected", DeviceInfo("Tesla T4", (7, 5), 14.74))
    assert check.ok, check.problems


# ---- the set-up cell in a simulated Colab -------------------------------------------------------------

NVIDIA_SMI = {"t4": "Tesla T4, 7.5, 15360", "l4": "NVIDIA L4, 8.9, 23034"}


def _simulated_colab(tmp_path, gpu_line: str) -> tuple[dict, Path]:
    """Colab's look from inside a kernel: COLAB_RELEASE_TAG, an nvidia-smi that reports ``gpu_line``, pip in
    dry-run mode against the real registry (recording what it would install), and the course's GitHub URL
    answered by this checkout (git's url.<base>.insteadOf)."""
    from pinned_source import pip_env

    bin_dir, content, site = tmp_path / "bin", tmp_path / "content", tmp_path / "site"
    for d in (bin_dir, content, site):
        d.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{gpu_line}'\n")
    smi.chmod(0o755)
    env = pip_env()
    env.update({
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "COLAB_RELEASE_TAG": "release-colab-simulated",
        bootstrap.DRY_RUN_ENV: str(site), "PYTHONPATH": str(site),  # the "installed" packages
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{hardware.REPO_ROOT}.insteadOf",
        "GIT_CONFIG_VALUE_0": bootstrap.COURSE_REPO,
    })
    env.pop("GRPO_COURSE_PROFILE", None)
    return env, content


def _run_cell(env, cwd):
    # -S: no site-packages, so neither this checkout's editable install nor this machine's packages are
    # visible, as on a fresh Colab VM; pip itself runs as its own process.
    code = bootstrap.NOTEBOOK_SETUP_CELL + "\nprint('TORCH_LOADED', 'torch' in sys.modules)\nprint('PROFILE', profile.name)"
    return subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1500)


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.xdist_group("colab-pins")
@pytest.mark.parametrize("profile", ["t4", "l4"])
def test_setup_cell_in_a_simulated_colab(tmp_path, profile):
    """The notebooks' first cell on a simulated Colab GPU VM: the right pin set, no torch imported before the
    install, progress shown; a second run installs nothing and reuses the clone."""
    env, content = _simulated_colab(tmp_path, NVIDIA_SMI[profile])
    first = _run_cell(env, content)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"PROFILE {profile}" in first.stdout and "TORCH_LOADED False" in first.stdout
    assert "packages] Would install" in first.stdout  # pip's progress, line by line
    site = tmp_path / "site"
    reports = sorted(site.glob("pip-report-*.json"))
    assert len(reports) == 2, reports  # the course (editable), then the GPU stack
    stack = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
             for i in json.loads(reports[1].read_text())["install"]}
    for pin in bootstrap.gpu_pins(profile):
        name, version = pin.split("==")
        assert stack.get(name.lower().replace("_", "-")) == version, (pin, stack.get(name))
    assert ("vllm" in stack) == hardware.PROFILES[profile].uses_vllm
    marker = content / "grpo-course" / "LEARNER_FILE"
    marker.write_text("kept")

    second = _run_cell(env, content)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"PROFILE {profile}" in second.stdout and "nothing to do" in second.stdout
    assert "Would install" not in second.stdout
    assert len(list(site.glob("pip-report-*.json"))) == 2  # pip was not run again
    assert marker.read_text() == "kept"  # the clone was reused, not cloned again


def test_restart_advice_names_a_changed_package_that_is_loaded():
    import pytest as loaded  # a module this process has imported

    version = loaded.__version__
    assert bootstrap.restart_advice({"pytest": version}, {"pytest": version}) is None
    advice = bootstrap.restart_advice({"pytest": version, "not-loaded": "1"}, {"pytest": "0.0.1", "not-loaded": "2"})
    assert advice is not None and "RESTART NEEDED" in advice and "pytest" in advice and "not-loaded" not in advice
    assert "Restart session" in advice


def test_pip_progress_is_shown_and_failure_is_plain(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(bootstrap.DRY_RUN_ENV, raising=False)
    with pytest.raises(RuntimeError, match="pip could not install a thing that does not exist"):
        bootstrap.run_pip(["--no-index", "surely-not-a-package==1.0"], "a thing that does not exist")
    out = capsys.readouterr().out
    assert "a thing that does not exist: pip install surely-not-a-package==1.0" in out
