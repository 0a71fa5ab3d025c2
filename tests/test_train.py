"""Stage 04: the GRPO pipeline: config reasons, tasks, health warnings, sample groups, checkpoints, resume,
before/after. The pipeline runs here on small random Llama models with the tiny model's tokenizer (fast);
the notebook and ``grpo-course train`` run it on the course's trained tiny model."""

from __future__ import annotations

import json
import math

import pytest

from grpo_course import checkpoint as ckpt
from grpo_course.hardware import PROFILES
from grpo_course.tasks import TaskData
from grpo_course.tasks.gsm8k import TASK as GSM8K
from grpo_course.tasks.gsm8k import demonstration as gsm8k_demonstration
from grpo_course.tasks.gsm8k import reasoning_and_answer as gsm8k_reasoning_and_answer
from grpo_course.train.config import (
    Setting,
    check_batch,
    grpo_settings,
    make_grpo_config,
    settings_rows,
    settings_table,
)
from grpo_course.train.data import prepare_data
from grpo_course.train.monitor import HealthCheck, group_text, plot_history, sample_groups

# A CPU profile that is not cpu-tiny: the pipeline then uses only the seeds' recipe and the profile's sizes,
# which keeps these tests independent of the tiny recipe (tested by the tiny lab's own tests).
CPU_TEST = PROFILES["cpu-tiny"].with_overrides(
    name="cpu-test", num_generations=4, per_device_train_batch_size=8, max_completion_length=8, max_steps=6,
    max_prompt_length=96)
FAST = {"learning_rate": 1e-2, "warmup_steps": 0.0, "lr_scheduler_type": "linear"}


# ---- config ----------------------------------------------------------------------------------------------


def test_every_setting_has_a_reason_and_trl_accepts_them(tmp_path):
    settings = grpo_settings(CPU_TEST, tmp_path, steps=3)
    assert all(isinstance(s, Setting) and len(s.why) > 15 for s in settings.values())
    assert "max_prompt_length" not in settings  # removed from TRL in 0.28
    assert settings["use_cpu"].value is True and settings["bf16"].value is False
    assert settings["learning_rate"].value == 5e-6 and settings["warmup_steps"].value == 0.1  # the seeds' recipe
    assert settings["max_steps"].value == 3 and settings["max_steps"].source == "you"
    config = make_grpo_config(settings)
    assert config.num_generations == 4 and config.beta == 0.04 and config.loss_type == "dapo"
    assert config.get_warmup_steps(100) == 10  # transformers 5 reads 0.1 as a fraction of the steps
    assert "learning_rate" in settings_table(settings)
    rows = settings_rows(settings)
    assert {r["setting"] for r in rows} == set(settings) and len(rows) == len(settings)
    assert settings_rows(settings, ["beta"]) == [{"setting": "beta", "value": 0.04, "from": "seed recipe",
                                                  "why": settings["beta"].why}]


def test_overrides_win_and_unknown_fields_are_refused(tmp_path):
    settings = grpo_settings(CPU_TEST, tmp_path, overrides={"temperature": 0.7})
    assert settings["temperature"] == Setting(0.7, "asked for by the caller", "you")
    settings["max_prompt_length"] = Setting(256, "old notebooks pass it", "you")
    with pytest.raises(TypeError, match="max_prompt_length was removed"):
        make_grpo_config(settings)


def test_batch_must_hold_whole_groups(tmp_path):
    with pytest.raises(ValueError, match="multiple of num_generations"):
        grpo_settings(CPU_TEST, tmp_path, overrides={"per_device_train_batch_size": 6})
    with pytest.raises(ValueError, match="at least 2"):
        check_batch({"num_generations": Setting(1, "", ""), "per_device_train_batch_size": Setting(4, "", "")})


# ---- tasks -----------------------------------------------------------------------------------------------


def test_gsm8k_gold_becomes_a_demonstration_in_the_course_format():
    gold = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nIn total 48+24 = <<48+24=72>>72 clips.\n#### 72"
    reasoning, answer = gsm8k_reasoning_and_answer(gold)
    assert answer == "72" and "<<" not in reasoning and "48/2 = 24" in reasoning
    demo = gsm8k_demonstration({"question": "q", "answer": gold})
    assert demo.startswith("<think>") and demo.endswith("<answer>72</answer>")
    from grpo_course.rewards import tag_reward

    assert tag_reward([demo], answer=[gold]) == [1.5]  # the demonstration earns the full tag reward


def test_gsm8k_comes_from_the_hub_on_gpu_profiles_and_from_the_project_on_cpu(monkeypatch):
    import datasets

    from grpo_course.tasks.gsm8k import CONFIG as GSM8K_CONFIG
    from grpo_course.tasks.gsm8k import HUB_ID as GSM8K_HUB_ID
    from grpo_course.tasks.gsm8k import load as load_gsm8k

    calls = []
    hub = {"train": [{"question": "q1", "answer": "1\n#### 1", "extra": 0}],
           "test": [{"question": "q2", "answer": "2\n#### 2", "extra": 0}]}

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return hub

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_gsm8k(PROFILES["l4"])
    assert calls == [((GSM8K_HUB_ID, GSM8K_CONFIG), {})] and (GSM8K_HUB_ID, GSM8K_CONFIG) == ("openai/gsm8k", "main")
    assert data.train == [{"question": "q1", "answer": "1\n#### 1"}]  # only GSM8K's two columns
    assert data.heldout == [{"question": "q2", "answer": "2\n#### 2"}]  # the test split is the held-out one
    calls.clear()
    local = load_gsm8k(PROFILES["cpu-tiny"])
    assert not calls and local.train and local.heldout  # CPU: the project's problems, no hub
    assert not {r["question"] for r in local.train} & {r["question"] for r in local.heldout}


def test_sft_priming_is_on_by_default_on_gpu_profiles_only():
    from grpo_course.train.pipeline import sft_priming_default

    assert {name: sft_priming_default(p) for name, p in PROFILES.items()} == {
        name: p.device != "cpu" for name, p in PROFILES.items()}
    assert sft_priming_default(PROFILES["l4"]) and sft_priming_default(PROFILES["t4"])
    assert not sft_priming_default(PROFILES["cpu-tiny"])


def test_reward_sets_resolve_to_registry_names():
    from grpo_course.rewards import get_reward

    assert GSM8K.reward_names("tag") == ("tag_format", "tag_answer")
    assert GSM8K.reward_names("composite") == ("composite_math",)
    assert GSM8K.reward_names(["tag"]) == ("tag",)
    for name in {n for names in GSM8K.reward_sets.values() for n in names}:
        assert callable(get_reward(name))


def test_prepare_data_filters_long_prompts_and_keeps_heldout_apart(tiny_tokenizer):
    rows = [{"question": f"Ava has {i} apples. She gets {i} more apples. How many apples does she have now?",
             "answer": f"{i}+{i}=<<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}"} for i in range(1, 40)]
    long_q = "Ava has 3 apples. " * 40 + "How many apples does she have?"
    data = TaskData(rows[:30] + [{"question": long_q, "answer": "#### 3"}, rows[35]], rows[30:], "hand-made")
    prepared = prepare_data(GSM8K, CPU_TEST, tiny_tokenizer, data=data)
    assert prepared.dropped_train == 1 and prepared.dropped_overlap == 1
    assert len(prepared.train) == 30 and len(prepared.heldout) == 9
    assert prepared.train[0]["prompt"][-1] == {"role": "user", "content": rows[0]["question"]}
    train_q = {r["question"] for r in prepared.train}
    assert not train_q & {r["question"] for r in prepared.heldout}
    assert "removed: 1 train" in prepared.report()


# ---- monitoring ------------------------------------------------------------------------------------------


def _rows(n, **values):
    return [{"step": i + 1, **values} for i in range(n)]


def test_zero_variance_warning_needs_many_steps_in_a_row():
    health = HealthCheck(zero_std_patience=5)
    assert not any(health.feed(r) for r in _rows(4, frac_reward_zero_std=1.0))
    assert not health.feed({"step": 5, "frac_reward_zero_std": 0.5})  # a good step resets the count
    warned = [w for r in _rows(5, frac_reward_zero_std=0.95) for w in health.feed(r)]
    assert len(warned) == 1 and "same reward" in warned[0]  # said once, not every step


def test_truncation_warning():
    health = HealthCheck()
    assert not [w for r in _rows(10, **{"completions/clipped_ratio": 0.3}) for w in health.feed(r)]
    warned = [w for r in _rows(3, **{"completions/clipped_ratio": 0.8}) for w in health.feed(r)]
    assert len(warned) == 1 and "max_completion_length" in warned[0]


def test_kl_spike_warns_but_a_steady_climb_does_not():
    health = HealthCheck()
    steady = [{"step": i, "kl": 0.01 * i} for i in range(1, 20)]
    assert not [w for r in steady for w in health.feed(r)]
    spike = health.feed({"step": 20, "kl": 2.0})
    assert len(spike) == 1 and "KL" in spike[0]


def test_sample_groups_cut_the_batch_into_groups_with_totals():
    prompts = ["p1"] * 3 + ["p2"] * 3
    rewards = {"fmt": [0.5, 0.5, 0.0, 0.5, 0.0, 0.0], "ans": [1.0, 0.0, 0.0, float("nan"), 0.0, 1.0]}
    groups = sample_groups(7, prompts, [f"c{i}" for i in range(6)], rewards, [1, 0, -1, 0.5, -1, 0.5], 3)
    assert [g["prompt"] for g in groups] == ["p1", "p2"]
    assert groups[0]["reward"] == [1.5, 0.5, 0.0]
    assert groups[1]["rewards"]["ans"][0] is None and groups[1]["reward"][0] == 0.5  # NaN -> None, skipped
    assert groups[1]["completions"] == ["c3", "c4", "c5"] and groups[0]["step"] == 7
    json.dumps(groups)  # JSON-clean
    assert len(sample_groups(7, prompts, ["c"] * 6, rewards, [0] * 6, 3, max_groups=1)) == 1
    text = group_text(groups[1], n=2)
    assert text.splitlines()[0].startswith("step 7  prompt: ...'p2'") and len(text.splitlines()) == 3
    assert "reward 0.5  advantage +0.50  'c3'" in text


def test_panel_draws_with_and_without_kl(tmp_path):
    rows = [{"step": i, "reward": i / 10, "rewards/tag_format/mean": 0.5, "rewards/tag_answer/mean": i / 10,
             "frac_reward_zero_std": 0.2, "completions/mean_length": 30, "completions/clipped_ratio": 0.1,
             "clip_ratio/region_mean": 0.0} for i in range(1, 8)]
    fig = plot_history(rows)
    assert len(fig.axes) == 6
    assert "beta = 0" in " ".join(t.get_text() for t in fig.axes[2].texts)  # no kl logged: said, not blank
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["total reward", "tag_format", "tag_answer"]
    fig = plot_history([{**r, "kl": 0.01 * r["step"]} for r in rows])
    assert not fig.axes[2].texts
    fig.savefig(tmp_path / "panel.png")


def test_panel_steps_are_whole_numbers_and_every_line_is_named():
    rows = [{"step": i, "reward": 1.0, "completions/mean_length": 20 + i, "completions/min_length": 10,
             "completions/max_length": 30 + i, "clip_ratio/region_mean": 0.0} for i in (1, 2, 3)]
    fig = plot_history(rows)
    fig.canvas.draw()
    for ax in fig.axes:  # three steps: matplotlib's default ticks would be 1.0, 1.25, 1.5, ...
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    length = fig.axes[4]
    assert [t.get_text() for t in length.get_legend().get_texts()] == ["shortest", "longest", "mean"]
    assert "on-policy" in " ".join(t.get_text() for t in fig.axes[3].texts)  # flat clipping: said why


def test_on_the_cpu_deepspeed_is_told_so_and_does_not_warn():
    import os
    import subprocess
    import sys

    pytest.importorskip("deepspeed")
    code = ("from grpo_course.train import prepare_runtime; prepare_runtime('cpu-tiny'); "
            "from deepspeed.accelerator import get_accelerator; print(get_accelerator().device_name())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("cpu") and "Setting accelerator to CPU" not in done.stdout + done.stderr


# ---- checkpoints -----------------------------------------------------------------------------------------


def test_rewind_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "reward": s}) + "\n" for s in range(1, 8)) + '{"step": 8, "rew')
    assert ckpt.rewind_jsonl(path, 4) == 4  # steps 5, 6, 7 and the line cut off by the crash
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def _fake_checkpoint(run, step, complete=True):
    """A checkpoint folder with the files the trainer writes (real torch/safetensors files, tiny contents)."""
    import torch
    from safetensors.torch import save_file

    d = run / f"checkpoint-{step}"
    d.mkdir(parents=True)
    if complete:
        save_file({"lora_A": torch.zeros(2, 2)}, str(d / "adapter_model.safetensors"))
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
            torch.save({"step": step}, d / name)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))  # written last, as the trainer does
    return d


def test_last_checkpoint_skips_a_half_written_one(tmp_path):
    for step in (2, 4):
        _fake_checkpoint(tmp_path, step)
    (tmp_path / "checkpoint-6").mkdir()  # cut off before anything was written
    assert ckpt.last_checkpoint(tmp_path).name == "checkpoint-4"
    assert ckpt.checkpoint_step(ckpt.last_checkpoint(tmp_path)) == 4
    assert ckpt.last_checkpoint(tmp_path / "missing") is None


def test_resuming_with_other_settings_is_refused(tmp_path):
    ckpt.check_run_matches(tmp_path, {"max_steps": 10})
    _fake_checkpoint(tmp_path, 5)
    with pytest.raises(ValueError, match="max_steps: 10 -> 20"):
        ckpt.check_run_matches(tmp_path, {"max_steps": 20})
    ckpt.start_fresh(tmp_path)
    ckpt.check_run_matches(tmp_path, {"max_steps": 20})


def test_runs_go_to_drive_only_on_colab(monkeypatch, tmp_path):
    monkeypatch.delenv("GRPO_COURSE_RUNS", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert ckpt.run_dir("gsm8k", "t4").parts[-2:] == ("runs", "gsm8k-t4")
    monkeypatch.setenv("GRPO_COURSE_RUNS", str(tmp_path))
    assert ckpt.run_dir("gsm8k", "l4", "tag") == tmp_path / "gsm8k-l4-tag"


# ---- the pipeline on a small random model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from grpo_course.paths import data_dir

    if (data_dir() / "tiny" / "sft" / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(data_dir() / "tiny" / "sft"))
    from grpo_course.tiny.tokenizer import build_tokenizer

    return build_tokenizer()


def _small_model(tokenizer):
    from grpo_course.tiny.model import TinyModelSettings, make_model

    return make_model(tokenizer, TinyModelSettings(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                   num_attention_heads=2), seed=0)


def _data(n_train=64, n_test=8):
    from grpo_course.tiny.problems import generate_problems

    train = generate_problems(n_train, seed=11, levels=1)
    test = generate_problems(n_test, seed=12, levels=1, exclude=[p["question"] for p in train])
    keep = ("question", "answer")
    return TaskData([{k: p[k] for k in keep} for p in train], [{k: p[k] for k in keep} for p in test], "generated")


def _run(tokenizer, out, **kw):
    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.train import train

    kw = {"verbose": False, **kw}
    return train("gsm8k", CPU_TEST, output_dir=out, model=_small_model(tokenizer), tokenizer=tokenizer,
                 peft_config=to_peft_config(lora_settings("cpu-tiny")), data=_data(), save_steps=2, eval_size=4,
                 overrides=FAST, live=False, threads=1, **kw)


def _state_tensors(optimizer):
    return {k: v for k, v in optimizer.state_dict()["state"].items()}


def test_interrupted_run_resumes_to_the_same_state_as_an_uninterrupted_one(tiny_tokenizer, tmp_path):
    import torch

    whole = _run(tiny_tokenizer, tmp_path / "whole", compare=False)
    assert whole.finished and whole.global_step == 6

    cut = _run(tiny_tokenizer, tmp_path / "cut", compare=False, stop_at_step=5)
    assert cut.interrupted and cut.global_step == 5
    assert ckpt.last_checkpoint(tmp_path / "cut").name == "checkpoint-4"  # step 5's work is lost with the session
    resumed = _run(tiny_tokenizer, tmp_path / "cut", compare=False)
    assert resumed.resumed_from == 4 and resumed.finished

    # identical step count, optimizer and scheduler state
    assert resumed.trainer.state.global_step == whole.trainer.state.global_step == 6
    a, b = _state_tensors(whole.trainer.optimizer), _state_tensors(resumed.trainer.optimizer)
    assert a.keys() == b.keys() and a
    for k in a:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(a[k][name], b[k][name], rtol=0, atol=1e-7)
    assert whole.trainer.lr_scheduler.state_dict() == resumed.trainer.lr_scheduler.state_dict()
    for (n1, p1), (n2, p2) in zip(whole.model.named_parameters(), resumed.model.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2, rtol=0, atol=1e-7)

    # no lost and no doubled log rows: trainer history, metrics.jsonl and samples.jsonl
    def steps(history):
        return [r["step"] for r in history if "reward" in r]

    assert steps(resumed.trainer.state.log_history) == steps(whole.trainer.state.log_history) == [1, 2, 3, 4, 5, 6]
    rows_whole = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    rows_cut = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_cut] == [1, 2, 3, 4, 5, 6]
    for r1, r2 in zip(rows_whole, rows_cut):
        for key in set(r1) - {"step_time"}:
            assert r1[key] == r2[key] or (math.isnan(r1[key] or 0) and math.isnan(r2[key] or 0)), key
    samples = [json.loads(x)["step"] for x in (tmp_path / "cut" / "samples.jsonl").read_text().splitlines()]
    assert sorted(set(samples)) == [1, 2, 3, 4, 5, 6] and samples == sorted(samples)
    assert len(samples) == 6 * 2  # 8 completions per step, G = 4: two groups a step, none twice

    # resume="reuse" finds the run finished, loads it and trains nothing more
    again = _run(tiny_tokenizer, tmp_path / "cut", compare=False, resume="reuse")
    assert again.global_step == 6 and again.resumed_from == 6 and again.start == "load"
    assert [r["step"] for r in again.history] == [1, 2, 3, 4, 5, 6]


def test_a_finished_run_is_trained_afresh_by_default(tiny_tokenizer, tmp_path):
    """Re-running a lesson after a finished run (notebook 04 after `make run`) must run its lesson: train
    again, say so, and report the time it spent; it never silently loads the old result."""
    first = _run(tiny_tokenizer, tmp_path / "run", compare=False, steps=2)
    assert first.finished and first.start == "fresh"
    again = _run(tiny_tokenizer, tmp_path / "run", compare=False, steps=2)
    assert again.start == "fresh" and again.resumed_from is None and again.finished
    assert "finished run" in again.start_reason and "replaces" in again.start_reason
    assert again.train_seconds > 0 and "GRPO wall time 0.0 s" not in again.summary()
    assert f"started: {again.start_reason}" in again.summary()
    rows = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2]  # the old run's rows were replaced, not doubled
    assert [r["step"] for r in again.trainer.state.log_history if "reward" in r] == [1, 2]


@pytest.mark.parametrize("steps_done, resume, action", [
    (None, "interrupted", "fresh"), (4, "interrupted", "resume"), (6, "interrupted", "fresh"),
    (None, "reuse", "fresh"), (4, "reuse", "resume"), (6, "reuse", "load"),
    (4, "fresh", "fresh"), (6, "fresh", "fresh"), (4, True, "resume"), (6, True, "fresh"), (4, False, "fresh"),
])
def test_decide_start_resumes_only_an_interrupted_run(tmp_path, steps_done, resume, action):
    from grpo_course.train.pipeline import decide_start

    if steps_done is not None:
        _fake_checkpoint(tmp_path, steps_done)
    decision = decide_start(tmp_path, 6, resume)
    assert decision.action == action and decision.reason
    assert (decision.checkpoint is None) == (action == "fresh")


def test_decide_start_refuses_an_unknown_choice(tmp_path):
    from grpo_course.train.pipeline import decide_start

    with pytest.raises(ValueError, match="interrupted.*fresh.*reuse"):
        decide_start(tmp_path, 6, "always")


def test_before_after_switches_the_adapter(tiny_tokenizer, tmp_path):
    from grpo_course.compare import before_after, evaluate_greedy

    result = _run(tiny_tokenizer, tmp_path / "cmp", steps=2, resume=False)
    cmp = result.comparison
    assert cmp is not None and cmp.after.n == 4 and cmp.labels[0] == "before (adapter off)"
    assert (result.output_dir / "final" / "adapter" / "adapter_config.json").is_file()
    # an adapter whose B matrices are zero changes nothing: before == after, token for token
    model = result.model
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.zero_()
    heldout = [{**r, "prompt": GSM8K.to_prompt(r)} for r in _data().heldout[:3]]
    same = before_after(model, tiny_tokenizer, heldout, evaluate_greedy, task=GSM8K, max_new_tokens=8)
    assert same.before.completions == same.after.completions
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 1.0)
    changed = before_after(model, tiny_tokenizer, heldout, evaluate_greedy, task=GSM8K, max_new_tokens=8)
    assert changed.before.completions == same.before.completions  # "before" is the base model either way
    assert changed.after.completions != changed.before.completions
    assert "Q: " in changed.side_by_side(n=1) and "held-out accuracy" in changed.summary()


def test_only_the_main_process_writes_the_runs_files(tiny_tokenizer, tmp_path, monkeypatch):
    """Under accelerate launch every rank runs train(); a non-main rank trains but saves nothing, so
    two ranks never write the same adapter, comparison or run record at once."""
    import grpo_course.train.pipeline as pipeline
    from grpo_course import checkpoint as ckpt

    monkeypatch.setattr(pipeline, "is_main_process", lambda: False)
    other = _run(tiny_tokenizer, tmp_path / "rank1", steps=1, resume=False)
    assert other.global_step == 1 and other.comparison is None and other.saved == {}
    written = {p.name for p in (tmp_path / "rank1").iterdir()} if (tmp_path / "rank1").exists() else set()
    assert not written & {"final", "result.json", "comparison.json", ckpt.RUN_FILE}, written
    monkeypatch.setattr(pipeline, "is_main_process", lambda: True)
    main = _run(tiny_tokenizer, tmp_path / "rank0", steps=1, resume=False)
    assert (main.output_dir / "result.json").is_file() and (main.output_dir / ckpt.RUN_FILE).is_file()
    assert (main.output_dir / "final" / "adapter" / "adapter_config.json").is_file()


def test_cli_train_parses_its_options():
    from grpo_course.cli import build_parser

    args = build_parser().parse_args(["train", "--steps", "5", "--reward", "composite", "--fresh"])
    assert args.steps == 5 and args.reward == "composite" and args.fresh and args.sft_priming == "auto"


@pytest.mark.parametrize("name", ["t4", "l4", "large"])
def test_gpu_settings_leave_unsloth_nothing_to_change_silently(name, tmp_path):
    from grpo_course import gpu
    from grpo_course.train.config import grpo_kwargs

    settings = grpo_settings(PROFILES[name], tmp_path)
    kwargs = grpo_kwargs(settings)
    assert gpu.unsloth_silent_changes(kwargs) == []
    assert kwargs["learning_rate"] == 5e-6 and kwargs["loss_type"] == "dapo" and kwargs["beta"] == 0.04
    assert kwargs["bf16"] is PROFILES[name].bf16 and kwargs["fp16"] is PROFILES[name].fp16
    assert "use_cpu" not in kwargs and settings["optim"].source == "gpu"


def test_sft_priming_trains_the_adapter_on_demonstrations(tiny_tokenizer, tmp_path):
    import torch
    from peft import get_peft_model

    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.train.sft import prime_format, priming_rows

    data = _data(n_train=16)
    rows = priming_rows(GSM8K, data.train, n=8)
    assert rows[0]["completion"][0]["content"].endswith("</answer>") and rows[0]["prompt"][-1]["role"] == "user"
    model = get_peft_model(_small_model(tiny_tokenizer), to_peft_config(lora_settings("cpu-tiny")))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = prime_format(model, tiny_tokenizer, GSM8K, data.train, CPU_TEST, str(tmp_path), steps=3, examples=8,
                          logging_steps=1, disable_tqdm=True)
    assert result.steps == 3 and result.examples == 8 and result.first_loss > 0
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)  # only the adapter moved


# ---- damaged and torn checkpoints (issue #15) -------------------------------------------------------------
# A checkpoint counts only when complete; a damaged newest one is skipped, with a warning, for the previous
# complete one; a damaged one with nothing before it is refused in plain words; a torn log line is trimmed.


def _tear(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {  # what happens to the newest checkpoint, the words the warning must hold
    "torn trainer_state.json": (lambda d: _tear(d / "trainer_state.json"), "trainer_state.json is cut off"),
    "empty trainer_state.json": (lambda d: (d / "trainer_state.json").write_text(""), "trainer_state.json"),
    "no trainer_state.json": (lambda d: (d / "trainer_state.json").unlink(), "trainer_state.json is missing"),
    "missing optimizer.pt": (lambda d: (d / "optimizer.pt").unlink(), "optimizer.pt (the optimizer's state) is missing"),
    "cut-off optimizer.pt": (lambda d: _tear(d / "optimizer.pt"), "optimizer.pt (the optimizer's state) is cut off"),
    "missing scheduler.pt": (lambda d: (d / "scheduler.pt").unlink(), "scheduler.pt (the learning-rate"),
    "missing rng_state.pth": (lambda d: (d / "rng_state.pth").unlink(), "rng_state.pth (the random number"),
    "cut-off weights": (lambda d: _tear(d / "adapter_model.safetensors"), "adapter_model.safetensors (the model "
                                                                          "weights) is cut off"),
    "no weights": (lambda d: (d / "adapter_model.safetensors").unlink(), "no model weights"),
}


@pytest.fixture(scope="module")
def cut_run(tiny_tokenizer, tmp_path_factory):
    """A 6-step run cut at step 5 (checkpoints 2 and 4 on disk), and the LoRA weights of the same run trained
    without a break: the reference a resume must reproduce."""
    root = tmp_path_factory.mktemp("damaged")
    whole = _run(tiny_tokenizer, root / "whole", compare=False)
    weights = {n: p.detach().clone() for n, p in whole.model.named_parameters() if "lora_" in n}
    cut = _run(tiny_tokenizer, root / "cut", compare=False, stop_at_step=5)
    assert cut.interrupted and [step for step, _ in ckpt.checkpoints(root / "cut")] == [2, 4]
    return root / "cut", weights


def _damaged_copy(cut_run, tmp_path, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cut_run[0], run)
    if damage is not None:
        DAMAGE[damage][0](run / "checkpoint-4")
    return run


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_is_skipped_for_the_previous_complete_one(cut_run, tmp_path, damage):
    from grpo_course.train.pipeline import decide_start

    run = _damaged_copy(cut_run, tmp_path, damage)
    assert ckpt.inspect_checkpoint(run / "checkpoint-2").complete
    status = ckpt.inspect_checkpoint(run / "checkpoint-4")
    assert not status.complete and any(DAMAGE[damage][1] in p for p in status.problems), status.problems
    assert ckpt.last_checkpoint(run).name == "checkpoint-2"
    decision = decide_start(run, 6)
    assert decision.action == "resume" and decision.checkpoint.name == "checkpoint-2"
    assert len(decision.warnings) == 1 and "checkpoint-4 is incomplete and is skipped in favour of checkpoint-2" \
        in decision.warnings[0] and DAMAGE[damage][1] in decision.warnings[0]


@pytest.mark.parametrize("damage", ["torn trainer_state.json", "missing optimizer.pt", "cut-off weights"])
def test_a_rerun_resumes_exactly_from_the_previous_complete_checkpoint(tiny_tokenizer, cut_run, tmp_path, damage,
                                                                       capsys):
    import torch

    run = _damaged_copy(cut_run, tmp_path, damage)
    resumed = _run(tiny_tokenizer, run, compare=False)  # verbose=False: the warning is printed all the same
    out = capsys.readouterr().out
    assert "warning: checkpoint-4 is incomplete and is skipped in favour of checkpoint-2" in out
    assert DAMAGE[damage][1] in out
    assert resumed.resumed_from == 2 and resumed.finished and resumed.global_step == 6
    for name, p in resumed.model.named_parameters():  # the same weights as the run that never broke
        if "lora_" in name:
            torch.testing.assert_close(p, cut_run[1][name], rtol=0, atol=1e-7)
    rows = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in ckpt.checkpoints(run)] == [4, 6]  # step 4 was saved again, whole


def test_a_torn_last_log_line_is_trimmed_before_the_log_is_read(tiny_tokenizer, cut_run, tmp_path, capsys):
    run = _damaged_copy(cut_run, tmp_path, None)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "reward": 0.12')  # the session died while this line was written
    rows, torn = ckpt.read_log(run / "metrics.jsonl")
    assert torn == 1 and [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    resumed = _run(tiny_tokenizer, run, compare=False, verbose=True)
    assert "1 line(s) cut off mid-write are removed" in capsys.readouterr().out
    assert resumed.resumed_from == 4 and resumed.finished
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_a_damaged_checkpoint_with_nothing_before_it_is_refused_in_plain_words(cut_run, tmp_path):
    import shutil

    from grpo_course.train.pipeline import decide_start
    from grpo_course.usage import UsageError

    run = _damaged_copy(cut_run, tmp_path, "missing optimizer.pt")
    shutil.rmtree(run / "checkpoint-2")
    with pytest.raises(UsageError, match=r"checkpoint-4 cannot be resumed: optimizer\.pt \(the optimizer's state\) is "
                                         r"missing\. There is no earlier complete checkpoint.*resume='fresh'"):
        decide_start(run, 6)
    assert (run / "checkpoint-4" / "trainer_state.json").is_file()  # refused: nothing deleted
    assert decide_start(run, 6, "fresh").action == "fresh"  # the way out the message names


def test_a_checkpoint_cut_off_mid_save_with_nothing_before_it_starts_afresh_with_a_warning(cut_run, tmp_path):
    import shutil

    from grpo_course.train.pipeline import decide_start

    run = _damaged_copy(cut_run, tmp_path, "torn trainer_state.json")
    shutil.rmtree(run / "checkpoint-2")
    decision = decide_start(run, 6)
    assert decision.action == "fresh" and decision.checkpoint is None
    assert "checkpoint-4 is incomplete and is skipped in favour of a fresh start" in decision.warnings[0]


def test_checkpoints_of_several_processes_and_of_deepspeed_count_as_complete(tmp_path):
    import torch

    ddp = _fake_checkpoint(tmp_path / "ddp", 2)
    (ddp / "rng_state.pth").rename(ddp / "rng_state_0.pth")
    torch.save({}, ddp / "rng_state_2.pth")
    assert "rng_state_1.pth" in ckpt.inspect_checkpoint(ddp).problems[0]  # rank 1's file is missing
    torch.save({}, ddp / "rng_state_1.pth")
    assert ckpt.inspect_checkpoint(ddp).complete
    ds = tmp_path / "ds" / "checkpoint-2"
    (ds / "global_step2").mkdir(parents=True)
    (ds / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    torch.save({}, ds / "rng_state.pth")
    torch.save({}, ds / "global_step2" / "mp_rank_00_model_states.pt")
    assert "holds no optimizer state" in ckpt.inspect_checkpoint(ds).problems[0]
    torch.save({}, ds / "global_step2" / "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt")
    assert ckpt.inspect_checkpoint(ds).complete


def test_an_empty_held_out_set_is_refused_before_training(tiny_tokenizer, tmp_path):
    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.train import train
    from grpo_course.usage import UsageError

    data = _data()
    with pytest.raises(UsageError, match="no held-out problems to compare"):
        train("gsm8k", CPU_TEST, steps=2, output_dir=tmp_path / "run", model=_small_model(tiny_tokenizer),
              tokenizer=tiny_tokenizer, peft_config=to_peft_config(lora_settings("cpu-tiny")),
              data=TaskData(data.train, [], "generated, no held-out rows"), live=False, verbose=False, threads=1)
    assert ckpt.last_checkpoint(tmp_path / "run") is None and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_before_after_of_nothing_is_refused():
    from grpo_course.compare import Comparison, Evaluation

    with pytest.raises(ValueError, match="nothing to compare"):
        Comparison(Evaluation([], [], []), Evaluation([], [], []))


def test_unscored_rows_are_excluded_from_the_before_after_and_reported():
    """legal-qa's judges may not score a completion (budget cap, outage): that row is left out of the paired
    before/after and counted, never scored as wrong (issue #15)."""
    from grpo_course.compare import Comparison, Evaluation

    rows = [{"question": f"q{i}", "answer": "#### 1"} for i in range(5)]
    before = Evaluation(["c"] * 5, [False, None, False, True, False], [True] * 5, "before", rows)
    after = Evaluation(["c"] * 5, [True, True, None, True, None], [True] * 5, "after", rows)
    assert (before.unscored, after.unscored, before.accuracy, after.accuracy) == (1, 2, 0.25, 1.0)
    cmp = Comparison(before, after)
    assert cmp.graded_pairs() == ([False, True], [True, True], 3)
    text = cmp.summary()
    assert "the 2 of 5 problems graded both times): 50.0% -> 100.0%  (+50.0%)" in text
    assert "3 of 5 problems left out: unscored before 1, after 2" in text and "problems fixed 1, broken 0" in text
    assert cmp.greedy().before == 0.5 and cmp.greedy().after == 1.0
    nothing = Comparison(Evaluation(["c"], [None], [False], "b", rows[:1]), Evaluation(["c"], [True], [True], "a",
                                                                                      rows[:1]))
    assert "no problem was graded both before and after" in nothing.summary()


def test_a_run_that_dies_before_its_first_checkpoint_starts_over_cleanly(tiny_tokenizer, tmp_path):
    cut = _run(tiny_tokenizer, tmp_path / "early", steps=2, compare=False, stop_at_step=1)
    assert cut.interrupted and ckpt.last_checkpoint(tmp_path / "early") is None
    again = _run(tiny_tokenizer, tmp_path / "early", steps=2, compare=False)
    assert again.resumed_from is None and again.finished
    rows = [json.loads(x)["step"] for x in (tmp_path / "early" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2]


def test_no_push_to_the_hub_without_a_token(monkeypatch, capsys):
    from grpo_course.train.pipeline import _push

    class Boom:
        def push_to_hub(self, *a, **k):
            raise AssertionError("must not push without a token")

    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert _push(Boom(), Boom(), {}, "me/repo", None) == {}
    assert "no token" in capsys.readouterr().out
    assert _push(Boom(), Boom(), {}, None, "a-token") == {}  # no repository named: no push either


def test_same_seed_same_run_whatever_the_random_state_before(tiny_tokenizer, tmp_path):
    import torch

    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.train import train

    histories, weights = [], []
    for i in range(2):
        model = _small_model(tiny_tokenizer)
        torch.rand(17 + i)  # whatever ran before train() (the LoRA init must not depend on it)
        run = train("gsm8k", CPU_TEST, steps=2, output_dir=tmp_path / f"r{i}", model=model, tokenizer=tiny_tokenizer,
                    peft_config=to_peft_config(lora_settings("cpu-tiny")), data=_data(), overrides=FAST,
                    live=False, verbose=False, compare=False, threads=1)
        histories.append([{k: v for k, v in r.items() if k != "step_time"} for r in run.history])
        weights.append({n: p.detach().clone() for n, p in run.model.named_parameters() if "lora_" in n})
    assert histories[0] == histories[1]
    assert weights[0].keys() == weights[1].keys() and weights[0]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # incl. the random lora_A init


def test_cpu_tiny_takes_the_tiny_recipe_and_scales_its_rate_for_lora(tmp_path):
    from grpo_course.tiny.recipe import TINY_GRPO
    from grpo_course.train.config import TINY_LORA_LR_FACTOR

    lora = grpo_settings(PROFILES["cpu-tiny"], tmp_path)
    full = grpo_settings(PROFILES["cpu-tiny"], tmp_path, lora=False)
    for key in ("num_generations", "per_device_train_batch_size", "max_completion_length", "max_steps", "beta"):
        assert lora[key].value == TINY_GRPO[key] and lora[key].source == "tiny recipe"
    assert full["learning_rate"].value == TINY_GRPO["learning_rate"]
    assert lora["learning_rate"].value == pytest.approx(TINY_GRPO["learning_rate"] * TINY_LORA_LR_FACTOR)
    assert lora["save_strategy"].value == "steps"  # the recipe's "no" would leave nothing to resume from


def test_run_config_says_what_a_run_is_and_checks_its_numbers():
    from grpo_course.train import RunConfig

    config = RunConfig(task="medcalc", steps=30, reward="tolerance")
    text = config.describe()
    assert "task              'medcalc'  *" in text and "steps             30  *" in text
    assert "seed              0\n" in text + "\n" and "hf_token" not in text  # defaults unmarked; no token shown
    assert config.replace(seed=3).seed == 3 and config.seed == 0
    for bad in ({"steps": 0}, {"steps": -1}, {"save_steps": 0}, {"eval_size": True}, {"judges": "cheap"}):
        with pytest.raises(ValueError):
            RunConfig(**bad)


def test_train_prints_its_run_config_first(tiny_tokenizer, tmp_path, capsys):
    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.train import RunConfig, train

    config = RunConfig("gsm8k", CPU_TEST, steps=1, output_dir=tmp_path / "cfg", save_steps=1, eval_size=2,
                       overrides=FAST, live=False, threads=1, compare=False)
    result = train(config, model=_small_model(tiny_tokenizer), tokenizer=tiny_tokenizer,
                   peft_config=to_peft_config(lora_settings("cpu-tiny")), data=_data())
    assert capsys.readouterr().out.startswith("run:\n  task              'gsm8k'")
    assert result.config == config and result.global_step == 1
