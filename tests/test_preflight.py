"""``grpo-course preflight`` and ``grpo_course.preflight``: the reward checks find what they claim to find, the
group statistics agree with TRL's, the verdicts come from measurement, and the command keeps its contract."""

import math
import os
import re
import subprocess
import sys

import pytest

from grpo_course import preflight as pf
from grpo_course.paths import REPO_ROOT
from grpo_course.tasks.own import own_task

# tasks and rewards registered here are gone after each test: other test files count the course's own
pytestmark = pytest.mark.usefixtures("registries_restored")

LAST_LINE = re.compile(r"^preflight: (go|no-go) groups_with_variance=(\d\.\d\d) groups_with_positive=(\d\.\d\d) "
                       r"truncated=(\d\.\d\d) reward_errors=(\d+)$")
ENV = {**os.environ, "GRPO_COURSE_PROFILE": "cpu-tiny", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grpo_course.cli", "preflight", *args], capture_output=True, text=True,
                          timeout=600, env=ENV, cwd=REPO_ROOT)


# ---- the command line: the "done when" ------------------------------------------------------------


def test_gsm8k_on_the_cpu_gets_go_from_measurement():
    proc = _cli("--task", "gsm8k")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    verdict, variance, positive, truncated, errors = LAST_LINE.match(lines[-1]).groups()
    assert verdict == "go" and lines[-2] == "preflight: go"
    assert float(variance) >= pf.THRESHOLDS.min_variance and float(positive) > pf.THRESHOLDS.min_positive
    assert float(truncated) <= pf.THRESHOLDS.max_truncated and errors == "0"
    for check in ("TRL signature", "edge cases", "fuzzed sample", "prompt lengths", "groups with reward variance",
                  "memory (stage-03 planner)", "time per step"):
        assert f"] {check}:" in proc.stdout
    assert "preflight: 32 prompts x 8" in proc.stderr  # the progress bar while sampling


def test_temperature_zero_gets_no_go_for_no_variance_with_the_fix():
    proc = _cli("--task", "gsm8k", "--temperature", "0")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    verdict, variance, *_ = LAST_LINE.match(lines[-1]).groups()
    assert verdict == "no-go" and float(variance) == 0.0
    verdict_block = proc.stdout[proc.stdout.index("preflight: no-go\n"):]
    assert "- groups with reward variance: 0%" in verdict_block
    assert "fix: raise the temperature to 1.0 (--temperature 1.0; now 0, which is greedy decoding" in verdict_block


def test_a_usage_mistake_is_one_error_line_and_exit_2_in_a_fresh_process():
    proc = _cli("--num-generations", "1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: --num-generations 1: GRPO compares at least 2 completions per prompt"


@pytest.mark.parametrize("args, message", [
    (["--temperature", "-1"], "error: --temperature -1.0: use 0 (greedy) or more"),
    (["--max-completion-length", "0"], "error: --max-completion-length 0: use 1 or more"),
    (["--prompts", "0"], "error: --prompts 0: sample at least 1 prompt"),
    (["--prompts", "many"], "error: argument --prompts: invalid int value: 'many'"),
    (["--task", "banana"], "error: Unknown task 'banana'"),
    (["--task", "no_such_module:TASK"], "error: --task no_such_module:TASK: cannot import no_such_module"),
    (["--task", "grpo_course.paths:REPO_ROOT"], "error: --task grpo_course.paths:REPO_ROOT: REPO_ROOT in"),
    (["--profile", "banana"], "error: Unknown profile 'banana'"),
])
def test_a_usage_mistake_is_one_error_line_and_exit_2(args, message, capsys):
    from grpo_course.cli import main

    try:
        code = main(["preflight", *args])
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith(message), out.err


def test_your_own_task_from_a_python_file(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from grpo_course.tasks.own import own_task\n"
        "def answer_reward(completions, result, **kwargs):\n"
        "    return [1.0 if str(r) in c[0]['content'] else 0.0 for c, r in zip(completions, result)]\n"
        "TASK = own_task('mine', 'data/own_task/take_away.jsonl', lambda row: row['problem'], "
        "['tag_format', answer_reward], answer_column='result')\n")
    proc = _cli("--task", f"{tmp_path / 'mine.py'}:TASK", "--prompts", "4", "--num-generations", "2")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "preflight: task mine on profile cpu-tiny" in proc.stdout and LAST_LINE.match(proc.stdout.splitlines()[-1])
    assert "mine.answer_reward (answer)" in proc.stdout and "tag_format (format)" in proc.stdout


# ---- the reward checks, table-driven ------------------------------------------------------------------------

ROWS = [{"problem": f"Ava has {n} apples. She eats 1 apple. How many apples does Ava have now?", "result": n - 1,
         "topic": "lose"} for n in range(5, 13)]


def _answer(completion) -> str:
    text = completion[0]["content"] if isinstance(completion, list) else completion
    return text.split("<answer>")[-1].split("</answer>")[0]


def good(completions, result, **kwargs):
    out = []
    for c, r in zip(completions, result):
        try:
            out.append(1.0 if float(_answer(c)) == float(r) else 0.0)
        except (TypeError, ValueError):
            out.append(0.0 if r not in (None, "") else None)
    return out


good.reward_range = (0.0, 1.0)


def crashes_on_bad_text(completions, result, **kwargs):
    return [1.0 if float(c[0]["content"].split("<answer>")[1].split("</answer>")[0]) == float(r) else 0.0
            for c, r in zip(completions, result)]


def no_kwargs(completions, result):
    return [0.0 for _ in completions]


def out_of_range(completions, result, **kwargs):
    return [2.0 for _ in completions]


out_of_range.reward_range = (0.0, 1.0)


def nan_reward(completions, result, **kwargs):
    return [math.nan for _ in completions]


def one_short(completions, result, **kwargs):
    return [0.0 for _ in completions][1:]


def always_none(completions, result, **kwargs):
    return [None for _ in completions]


def never_positive(completions, result, **kwargs):
    return [0.0 for _ in completions]


never_positive.reward_range = (0.0, 1.0)


def _task(reward, demonstration=True):
    def demo(row):
        return f"<think>\n{row['result'] + 1} - 1 = {row['result']}\n</think>\n<answer>{row['result']}</answer>"

    return own_task("check", ROWS, lambda row: row["problem"], ["tag_format", reward], answer_column="result",
                    demonstration=demo if demonstration else None, register=False)


def _statuses(report):
    return {f.name: f.status for f in report.findings()}


@pytest.mark.parametrize("reward, failed, errors", [
    (good, set(), 0),
    (crashes_on_bad_text, {"edge cases", "fuzzed sample"}, None),
    (no_kwargs, {"TRL signature"}, 7),  # once per training row (7 of 8: every 5th is held out), then no more calls
    (out_of_range, {"edge cases", "fuzzed sample", "training rows"}, None),
    (nan_reward, {"edge cases", "fuzzed sample", "training rows", "a correct answer scores"}, None),  # NaN is no score
    (one_short, {"edge cases", "training rows", "a correct answer scores"}, None),  # one finding per wrong-length batch
    (never_positive, {"a correct answer scores"}, 0),
])
def test_check_rewards_finds_each_kind_of_broken_reward(reward, failed, errors):
    report = pf.check_rewards(_task(reward), "cpu-tiny")
    statuses = _statuses(report)
    assert {name for name, status in statuses.items() if status == pf.FAIL} == failed, report.findings()
    if errors is not None:
        assert report.errors == errors
    else:
        assert report.errors > 0
    assert all(p.reward == f"check.{reward.__name__}" for p in report.problems)  # tag_format passes every case


def test_edge_cases_name_the_checklist_cases():
    report = pf.check_rewards(_task(crashes_on_bad_text), "cpu-tiny")
    cases = {p.case for p in report.problems}
    assert {"edge: empty output", "edge: malformed JSON", "edge: division by zero in the expected answer"} <= cases
    assert any("IndexError" in p.problem for p in report.problems if p.case == "edge: empty output")


def test_none_on_rows_with_an_answer_is_a_warning_and_a_missing_answer_may_give_none():
    assert _statuses(pf.check_rewards(_task(always_none), "cpu-tiny"))["None handling"] == pf.WARN
    report = pf.check_rewards(_task(good), "cpu-tiny")
    assert _statuses(report)["None handling"] == pf.OK and not report.nones  # good returns None only without gold


def test_a_reward_without_a_declared_range_is_a_warning_and_a_slow_one_too():
    report = pf.check_rewards(_task(always_none), "cpu-tiny")
    assert _statuses(report)["declared range"] == pf.WARN
    strict = pf.Thresholds(slow_reward_ms=0.0)
    assert {f.name: f.status for f in report.findings(strict)}["cost per call"] == pf.WARN
    assert all(report.ms_per_completion(n) > 0 for n in report.names)


def test_without_a_demonstration_the_correct_answer_check_is_not_claimed():
    report = pf.check_rewards(_task(never_positive, demonstration=False), "cpu-tiny")
    assert report.demo_positive is None and "a correct answer scores" not in _statuses(report)


def test_fuzzed_completions_are_seeded_and_reach_the_extremes():
    a, b = pf.fuzz_completions(64, seed=3, golds=[7]), pf.fuzz_completions(64, seed=3, golds=[7])
    assert a == b and a != pf.fuzz_completions(64, seed=4, golds=[7])
    assert max(map(len, a)) >= 20_000 and any("<answer>" in t for t in a) and any("7" in t for t in a)


# ---- TRL's call and TRL's statistics ------------------------------------------------------------------------


def test_rewards_are_called_exactly_as_trl_calls_them_and_groups_counted_as_trl_counts(tmp_path):
    """A real GRPOTrainer generation batch: the keywords it passes equal ours, and our variance fraction on its
    rewards equals one minus its frac_reward_zero_std."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from grpo_course.hardware import get_profile
    from grpo_course.rewards import get_reward
    from grpo_course.tasks import get_task
    from grpo_course.tiny import load_tiny

    seen: dict = {}
    values: dict = {"fmt": [], "ans": []}

    def recording(name, fn):
        def reward(**kwargs):
            seen.setdefault(name, kwargs)
            out = fn(**kwargs)
            values[name].append(list(out))
            return out

        reward.__name__ = name
        return reward

    task = get_task("gsm8k")
    model, tok = load_tiny("sft")
    rows = [{"prompt": task.to_prompt(r), "question": r["question"], "answer": r["answer"], "extra": i}
            for i, r in enumerate(task.load(get_profile("cpu-tiny")).train[:4])]
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                      per_device_train_batch_size=16, num_generations=4, max_completion_length=40, temperature=1.0,
                      gradient_checkpointing=False, seed=0)
    trainer = GRPOTrainer(model=model, processing_class=tok, args=args, train_dataset=Dataset.from_list(rows),
                          reward_funcs=[recording("fmt", get_reward("tag_format")),
                                        recording("ans", get_reward("tag_answer"))])
    trainer.model.train()  # TRL logs to "train" in training mode
    trainer._generate_and_score_completions([r for r in rows for _ in range(4)])
    trl_keys = set(seen["fmt"])
    ours: dict = {}
    pf.trl_reward_call(lambda **kw: ours.update(kw) or [0.0] * 4, [rows[0]] * 4, ["x"] * 4, [rows[0]["prompt"]] * 4,
                       tok, pf._trainer_state())
    assert set(ours) == trl_keys, set(ours) ^ trl_keys
    assert seen["fmt"]["completions"][0][0]["role"] == "assistant" and ours["completions"][0][0]["role"] == "assistant"
    assert isinstance(seen["fmt"]["completion_ids"][0][0], int) and isinstance(ours["completion_ids"][0][0], int)

    per_reward = {n: [v[0][i:i + 4] for i in range(0, 16, 4)] for n, v in values.items()}
    totals, _ = pf.combine_rewards(per_reward, {"fmt": 1.0, "ans": 1.0}, {"fmt": "format", "ans": "answer"})
    ours_zero = 1 - sum(pf.has_variance(g) for g in totals) / len(totals)
    assert ours_zero == pytest.approx(trainer._metrics["train"]["frac_reward_zero_std"][-1])
    mean_reward = sum(sum(g) for g in totals) / 16
    assert mean_reward == pytest.approx(trainer._metrics["train"]["reward"][-1], abs=1e-6)


def _sampled(totals, answer=None, truncated=None, roles=None):
    n = len(totals[0])
    per = {"r": [[v if not math.isnan(v) else None for v in g] for g in totals]}
    return pf.Sampled([["x"] * n for _ in totals], truncated or [[False] * n for _ in totals],
                      [[5] * n for _ in totals], per, totals, answer or totals, roles or {"r": "answer"}, {"r": 1.0},
                      1.0, 1, 0.1)


@pytest.mark.parametrize("totals, variance, positive", [
    ([[1, 1, 1, 1], [0, 0, 0, 0]], 0.0, 0.5),
    ([[1, 0, 0, 0], [0, 0, 0, 0]], 0.5, 0.5),
    ([[1, 0.5, 0, 0], [0, 0, 0, 1e-12]], 0.5, 1.0),  # a spread of 1e-12 is no variance (torch.isclose)
    ([[math.nan, math.nan, math.nan, math.nan], [math.nan, 1, math.nan, math.nan]], 0.0, 0.5),  # unscorable
    ([[math.nan, 1, 0, math.nan]], 1.0, 1.0),
])
def test_group_fractions(totals, variance, positive):
    s = _sampled(totals)
    assert s.frac_variance == pytest.approx(variance) and s.frac_positive == pytest.approx(positive)


def test_positive_means_the_answer_reward_not_the_format_reward():
    s = _sampled([[0.5, 0.5], [0.5, 1.5]], answer=[[0.0, 0.0], [0.0, 1.0]])
    assert s.frac_positive == 0.5 and s.flat_groups() == (0, 1, 0)


# ---- the verdict: each failure with its own fix ------------------------------------------------------------


def _fixes(findings):
    return {f.name: f.fix for f in findings if f.status == pf.FAIL}


def test_greedy_sampling_fails_variance_with_the_temperature_fix():
    s = _sampled([[0, 0, 0, 0]] * 3 + [[1, 1, 1, 1]])
    fixes = _fixes(pf._sampling_findings(s, 0.0, 4, 40, 40, True, pf.THRESHOLDS))
    assert "--temperature 1.0" in fixes["groups with reward variance"]
    assert "--num-generations 8" in fixes["groups with reward variance"]
    assert "SFT priming" not in fixes["groups with reward variance"]  # the sampling, not the model, is at fault


def test_truncation_comes_first_and_asks_for_the_runs_length():
    s = _sampled([[0, 0, 0, 0]] * 4, truncated=[[True] * 4] * 4)
    fixes = _fixes(pf._sampling_findings(s, 1.0, 8, 12, 40, True, pf.THRESHOLDS))
    assert list(fixes)[0] == "truncated" and "--max-completion-length 40; the run's default" in fixes["truncated"]
    assert fixes["groups with reward variance"].startswith("fix the truncation above first")


@pytest.mark.parametrize("totals, advice", [
    ([[0, 0, 0, 0]] * 4, "SFT priming"),  # wide sampling, nothing right: the model needs help
    ([[1, 1, 1, 1]] * 4, "harder prompts"),  # everything right: nothing left to learn
])
def test_with_wide_sampling_the_fix_depends_on_how_the_groups_are_flat(totals, advice):
    fixes = _fixes(pf._sampling_findings(_sampled(totals), 1.0, 8, 40, 40, True, pf.THRESHOLDS))
    assert advice in fixes["groups with reward variance"] and "--temperature" not in fixes["groups with reward variance"]


def test_a_reward_that_is_never_positive_is_named_as_the_fix():
    fixes = _fixes(pf._sampling_findings(_sampled([[0, 0]] * 2), 1.0, 8, 40, 40, False, pf.THRESHOLDS))
    assert "not positive even on a correct answer" in fixes["groups with a positive answer"]


# ---- the three verdicts of notebook 08, on the tiny model -------------------------------------------------


@pytest.fixture
def take_away():
    from grpo_course.paths import data_dir
    from grpo_course.tasks.own import EXAMPLE_FILE

    return own_task("take-away-test", data_dir() / EXAMPLE_FILE, lambda row: row["problem"], ["tag_format", good],
                    answer_column="result", register=False)


@pytest.mark.parametrize("overrides, go, failed", [
    ({}, True, set()),
    ({"temperature": 0.1}, False, {"groups with reward variance", "groups with a positive answer"}),
    ({"max_completion_length": 12}, False, {"truncated", "groups with reward variance", "groups with a positive answer"}),
])
def test_the_three_verdicts_of_the_lesson(take_away, overrides, go, failed):
    report = pf.preflight(take_away, "cpu-tiny", progress=False, say=lambda *a: None, prompts=16, **overrides)
    assert report.go is go and {f.name for f in report.failures} == failed, report.text()
    assert report.reward_errors == 0 and report.step is not None and report.plan.fits
    assert report.last_line().startswith(f"preflight: {'go' if go else 'no-go'} ")
