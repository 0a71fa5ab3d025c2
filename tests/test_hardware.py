"""The one profile switch: decision rule on faked devices, overrides, and the CLI."""

import pytest

from grpo_course import hardware
from grpo_course.hardware import DeviceInfo, choose_profile, parse_nvidia_smi

T4 = DeviceInfo("Tesla T4", (7, 5), 14.74)
L4 = DeviceInfo("NVIDIA L4", (8, 9), 22.16)
A10G = DeviceInfo("NVIDIA A10G", (8, 6), 22.0)
A100_40 = DeviceInfo("NVIDIA A100-SXM4-40GB", (8, 0), 39.6)
A100_80 = DeviceInfo("NVIDIA A100-SXM4-80GB", (8, 0), 79.2)
H100 = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), 79.6)


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        (None, "cpu-tiny"),
        (T4, "t4"),
        (L4, "l4"),
        (A10G, "t4"),  # bf16 but no FP8 and < 40 GB: the 16-bit recipe
        (A100_40, "t4"),  # 39.6 GB reported: just under the 40 GB bar
        (A100_80, "large"),
        (H100, "large"),
    ],
)
def test_decision_rule(device, expected):
    profile, reason = choose_profile(device)
    assert profile.name == expected
    assert reason


def test_t4_profile_has_no_fp8_no_bf16_no_vllm():
    t4 = hardware.PROFILES["t4"]
    assert not t4.load_in_fp8 and not t4.bf16 and t4.fp16 and not t4.uses_vllm
    assert not T4.supports_fp8 and not T4.supports_bf16


def test_l4_profile_uses_fp8_bf16_vllm():
    l4 = hardware.PROFILES["l4"]
    assert l4.load_in_fp8 and l4.bf16 and l4.uses_vllm and 0 < l4.gpu_memory_utilization < 1
    assert L4.supports_fp8


def test_profiles_change_sizes_not_logic():
    fields = {tuple(sorted(p.as_dict())) for p in hardware.PROFILES.values()}
    assert len(fields) == 1
    for p in hardware.PROFILES.values():
        assert p.num_generations >= 2
        # TRL needs the generation batch to split into whole groups
        assert (p.per_device_train_batch_size * p.gradient_accumulation_steps) % p.num_generations == 0


def test_cpu_tiny_profile_shows_what_the_tiny_recipe_runs():
    """`grpo-course train` prints the profile before training; on cpu-tiny the tiny recipe's steps and
    group size are what run, so the profile must not print others."""
    from grpo_course.tiny.recipe import TINY_GRPO

    tiny = hardware.PROFILES["cpu-tiny"]
    assert (tiny.max_steps, tiny.num_generations) == (TINY_GRPO["max_steps"], TINY_GRPO["num_generations"])


def test_env_override(monkeypatch):
    monkeypatch.setenv(hardware.PROFILE_ENV_VAR, "l4")
    profile, reason = hardware.current_profile()
    assert profile.name == "l4" and hardware.PROFILE_ENV_VAR in reason


def test_unknown_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(hardware.PROFILE_ENV_VAR, "a100")
    with pytest.raises(hardware.UnknownProfileError, match="cpu-tiny"):
        hardware.current_profile()


def test_parse_nvidia_smi():
    info = parse_nvidia_smi("Tesla T4, 7.5, 15360\n")
    assert info == DeviceInfo("Tesla T4", (7, 5), 15.0)
    assert parse_nvidia_smi("") is None


def test_cpu_tiny_model_path_is_inside_the_repo():
    path = hardware.PROFILES["cpu-tiny"].model_path()
    assert path.endswith("data/tiny/sft")
    assert hardware.PROFILES["l4"].model_path() == "unsloth/Llama-3.2-1B-Instruct"


def test_cli_profile_prints_profile_and_reason(capsys, monkeypatch):
    from grpo_course.cli import main

    monkeypatch.delenv(hardware.PROFILE_ENV_VAR, raising=False)
    assert main(["profile", "--name", "t4"]) == 0
    out = capsys.readouterr().out
    assert "profile: t4" in out and "float16" in out


def test_load_average_is_one_line_for_the_benchmarks(monkeypatch):
    import os

    from grpo_course.hardware import load_average

    monkeypatch.setattr(os, "getloadavg", lambda: (1.234, 0.5, 0.0), raising=False)
    assert load_average() == "load average 1.23 0.50 0.00"

    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable, raising=False)
    assert load_average() == "load average n/a"
