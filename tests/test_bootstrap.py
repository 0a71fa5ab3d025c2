"""Notebook set-up: GPU pin sets per profile and the runtime fitness check."""

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
