"""``grpo-course smoke``: the CPU path end to end (CI runs it), the checks' verdicts, the command's contract."""

import math
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from grpo_course import smoke
from grpo_course.cli import main as cli_main
from grpo_course.hardware import PROFILES, get_profile

LAST_LINE = re.compile(r"^smoke: (ok profile=\S+ seconds=\d+|FAILED profile=\S+ \S.*)$")


@pytest.fixture(scope="module")
def cpu_report():
    return smoke.run_smoke("cpu-tiny", say=lambda *_: None)


def test_the_cpu_smoke_runs_the_real_path_and_passes_every_check(cpu_report):
    assert cpu_report.ok, cpu_report.table() + "\n" + str(cpu_report.error)
    names = [c.name for c in cpu_report.checks]
    assert names == ["trainer", "mixed precision", "finite loss", "gradient", "SFT priming", "resume",
                     "adapter reloads", "before/after"]
    assert LAST_LINE.match(cpu_report.last_line()) and cpu_report.last_line().startswith("smoke: ok profile=cpu-tiny")
    resume = next(c for c in cpu_report.checks if c.name == "resume")
    assert "stopped at step 2" in resume.detail and "finished at 3/3" in resume.detail


def test_a_gpu_profile_on_a_cpu_machine_fails_in_one_plain_line(capsys):
    assert cli_main(["smoke", "--profile", "t4"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(out[-1]) and out[-1].startswith("smoke: FAILED profile=t4 GPUUnavailableError")
    assert "Traceback" not in "\n".join(out)


def test_an_unknown_profile_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "grpo_course.cli", "smoke", "--profile", "banana"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: Unknown profile 'banana'") and "Traceback" not in proc.stderr


def test_dtype_watch_sees_a_bf16_output_and_passes_fp16():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    watch = smoke.DtypeWatch(torch.bfloat16)
    watch.attach(model)
    model(torch.ones(2, 4))
    watch.detach()
    assert watch.first is None and watch.outputs_seen == 3  # two layers and the Sequential
    model[1].to(torch.bfloat16)
    watch.attach(model)
    model[1](torch.ones(2, 4, dtype=torch.bfloat16))
    watch.scan(model)
    assert watch.first is not None and "Linear" in watch.first


@pytest.mark.parametrize("rows, finite, moved", [
    ([{"step": 1, "loss": 0.0, "grad_norm": 0.1}, {"step": 2, "loss": 0.2, "grad_norm": 0.0}], True, True),
    ([{"step": 1, "loss": math.nan, "grad_norm": 0.1}], False, True),
    ([{"step": 1, "loss": None, "grad_norm": 0.1}], False, True),  # the monitor writes a non-finite loss as None
    ([{"step": 1, "loss": 0.1, "grad_norm": 0.0}, {"step": 2, "loss": 0.1, "grad_norm": 0.0}], True, False),
    ([], False, False),
])
def test_loss_and_gradient_checks(rows, finite, moved):
    loss, grad = smoke._loss_checks(rows)
    assert (loss.ok, grad.ok) == (finite, moved)


def test_a_loss_of_zero_is_explained_not_left_to_look_like_a_failure():
    loss, _ = smoke._loss_checks([{"step": 1, "loss": 0.0, "grad_norm": 0.05}, {"step": 2, "loss": 0.0002}])
    assert loss.ok and "about 0 is expected" in loss.detail
    loss, _ = smoke._loss_checks([{"step": 1, "loss": 0.3, "grad_norm": 0.05}])
    assert "expected" not in loss.detail


def test_the_priming_check_needs_a_logged_loss():
    from grpo_course.train.sft import PrimingResult, sft_settings

    assert smoke._priming_check(SimpleNamespace(priming=PrimingResult(smoke.SFT_STEPS, 64, 2.5, 1.9))).ok
    assert not smoke._priming_check(SimpleNamespace(priming=PrimingResult(smoke.SFT_STEPS, 64, None, None))).ok
    cpu = get_profile("cpu-tiny")
    assert sft_settings(cpu, "out", smoke.SFT_STEPS)["logging_steps"] == 1  # 2 steps still log a loss
    assert sft_settings(cpu, "out", 40)["logging_steps"] == 5


class _Run:
    def __init__(self, step, interrupted, resumed_from=None):
        self.global_step, self.interrupted, self.resumed_from = step, interrupted, resumed_from


@pytest.mark.parametrize("first, second, saved, ok", [
    (_Run(2, True), _Run(3, False, 1), 1, True),  # died after logging step 2, before saving it: redo step 2
    (_Run(2, True), _Run(3, False, 2), 2, True),
    (_Run(2, True), _Run(3, False, None), 1, False),  # started over instead of resuming
    (_Run(2, True), _Run(3, False, 2), 1, False),  # resumed from a step that was never saved
    (_Run(3, False), _Run(3, False, 3), 3, False),  # never interrupted
    (_Run(2, True), _Run(2, True, 1), 1, False),  # did not finish
])
def test_resume_check(first, second, saved, ok):
    assert smoke._resume_check(first, second, saved).ok is ok


def test_the_fp8_smoke_model_has_block_sized_projections(tmp_path):
    folder = smoke.write_smoke_model(PROFILES["l4"], tmp_path)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    for name, module in model.named_modules():
        if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
            assert module.weight.shape[0] % 128 == 0 and module.weight.shape[1] % 128 == 0, name


def test_t4_smoke_model_is_the_tiny_sft_model(tmp_path):
    folder = smoke.write_smoke_model(PROFILES["t4"], tmp_path)
    assert (folder / "model.safetensors").read_bytes() == (smoke.TINY_SFT_DIR / "model.safetensors").read_bytes()
    assert smoke.write_smoke_model(PROFILES["cpu-tiny"], tmp_path) is None


def test_expected_precision_per_profile():
    assert [smoke.expected_mixed_precision(PROFILES[n]) for n in ("cpu-tiny", "t4", "l4", "large")] == [
        "no", "fp16", "bf16", "bf16"]
