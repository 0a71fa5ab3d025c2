"""grpo_course.tasks: the registry, each loader against a local file in the hub schema, prompts, rewards,
metrics, the tiny CPU models, and `grpo-course train/eval --task T` end to end on CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_course.chat_format import format_response
from grpo_course.hardware import get_profile
from grpo_course.tasks import Task, get_task, legal_qa, list_tasks, medcalc
from grpo_course.tasks import code as code_task
from grpo_course.tasks.base import read_jsonl

CPU = get_profile("cpu-tiny")
NEW_TASKS = ("code", "medcalc", "legal-qa")


def answer(text: str, reasoning: str = "I work it out.") -> str:
    return format_response(reasoning, text)


# ---- registry ---------------------------------------------------------------------------------------


def test_every_task_is_in_the_pipelines_registry():
    from grpo_course.tasks.base import TASKS
    from grpo_course.train import get_task as pipeline_get_task

    assert list_tasks() == ["gsm8k", "code", "legal-qa", "medcalc"]
    for name in NEW_TASKS:
        assert pipeline_get_task(name) is get_task(name) is TASKS[name]
        assert isinstance(get_task(name), Task) and get_task(name).uses_tiny_text_model
    with pytest.raises(ValueError, match="Tasks: code, gsm8k, legal-qa, medcalc"):
        get_task("chess")


def test_importing_the_tasks_is_light():
    code = ("import sys, grpo_course.tasks as t; t.get_task('legal-qa'); "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'trl', 'httpx', 'unsloth', 'vllm') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", NEW_TASKS)
def test_each_task_names_its_data_models_rewards_and_metric(name):
    from grpo_course.rewards import REWARDS

    task = get_task(name)
    for src in task.sources.values():
        assert src.hub_id and src.split and src.licence and (task.data_folder / src.local_file).is_file()
    assert set(task.models) == {"cpu-tiny", "t4", "l4", "large"}
    for set_name, names in task.reward_sets.items():
        assert all(n in REWARDS for n in names), names
        assert len(task.weights_for(set_name)) == len(names)
    assert task.metric and task.colab and task.demonstration is not None


def test_profiles_get_the_tasks_model_and_lengths():
    code = get_task("code")
    t4 = code.profile_for(get_profile("t4"))
    assert t4.model_id == "unsloth/Qwen2.5-Coder-0.5B-Instruct" and t4.max_completion_length == 512
    l4 = get_task("medcalc").profile_for(get_profile("l4"))
    assert l4.model_id == "unsloth/Qwen2.5-1.5B-Instruct" and l4.quantization == "none" and l4.max_prompt_length >= 1024
    assert get_task("legal-qa").profile_for(get_profile("large")).model_id == "unsloth/Llama-3.2-3B-Instruct"
    cpu = code.grpo_overrides(CPU)
    assert cpu["reward_weights"] == [1.0, 0.2] and cpu["per_device_train_batch_size"] % cpu["num_generations"] == 0
    assert "max_steps" not in cpu  # --steps must win
    assert code.grpo_overrides(get_profile("t4"), "all_pass") == {"reward_weights": [1.0, 0.2]}


# ---- loaders: the local files have the hub datasets' exact columns and types ------------------------

SCHEMAS = {
    ("code", "train"): {"task_id": int, "text": str, "code": str, "test_list": list, "test_setup_code": str,
                        "challenge_test_list": list},
    ("code", "heldout"): {"task_id": str, "prompt": str, "canonical_solution": str, "test": str, "entry_point": str},
    ("medcalc", "train"): {**dict.fromkeys(medcalc.COLUMNS, str), "Row Number": int, "Calculator ID": int},
    ("medcalc", "heldout"): {**dict.fromkeys(medcalc.COLUMNS, str), "Row Number": int, "Calculator ID": int},
    ("legal-qa", "train"): {"question_id": int, "tags": list, "score": int, "license": str, "link": str,
                            "question_title": str, "question_body": str, "answers": list},
}


@pytest.mark.parametrize("key", sorted(SCHEMAS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_local_files_have_the_hub_schema(key):
    name, which = key
    rows = read_jsonl(get_task(name).local_path(which))
    assert len(rows) >= 4
    for row in rows:
        assert set(row) == set(SCHEMAS[key]), sorted(row)
        for col, typ in SCHEMAS[key].items():
            assert isinstance(row[col], typ), (col, row[col])
    if name == "legal-qa":
        for a in (a for r in rows for a in r["answers"]):
            assert set(a) == {"answer_id", "body", "score"}


def test_code_loader():
    data = get_task("code").load(CPU)
    assert len(data.train) == 8 and len(data.heldout) == 4
    assert all(r["answer"] == r["code"] and len(r["test_list"]) == 3 for r in data.train)
    he = data.heldout[0]
    assert "prompt" not in he and he["function_stub"].startswith("def ") and "check(candidate)" in he["test"]
    assert code_task.check_no_leak(data.train, data.heldout) == []


def test_medcalc_loader_keeps_dates_out_of_training_only():
    data = get_task("medcalc").load(CPU)
    assert {r["answer_kind"] for r in data.train} == {"number"}
    assert "date" in {r["answer_kind"] for r in data.heldout}
    bmi = next(r for r in data.train if r["Calculator ID"] == 6)
    assert bmi["atol"] == pytest.approx(float(bmi["Upper Limit"]) - float(bmi["answer"]), abs=1e-3)
    score = next(r for r in data.train if r["Output Type"] == "integer")
    assert score["atol"] == 0.0
    assert "1 date/weeks-days rows kept out of training" in data.source


def test_legal_loader_splits_by_id_and_takes_the_top_answer():
    data = get_task("legal-qa").load(CPU)
    assert {r["question_id"] % 5 for r in data.heldout} == {0}
    assert all(r["question_id"] % 5 for r in data.train)
    assert 109 not in {r["question_id"] for r in data.train + data.heldout}  # no answers: dropped
    verbal = next(r for r in data.train if r["question_id"] == 102)
    assert verbal["reference"].startswith("Yes, in most jurisdictions") and "<p>" not in verbal["reference"]


@pytest.mark.parametrize("name", NEW_TASKS)
def test_a_file_missing_a_column_is_refused(name, tmp_path, monkeypatch):
    task = get_task(name)
    src = task.local_path("train")
    bad = [{k: v for k, v in row.items() if k != sorted(row)[0]} for row in read_jsonl(src)]
    (tmp_path / "tasks" / name).mkdir(parents=True)
    for which in sorted(task.sources, key=lambda w: w == "train"):  # train last: it may share the file
        target = tmp_path / "tasks" / name / task.sources[which].local_file
        rows = bad if which == "train" else read_jsonl(task.local_path(which))
        target.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("GRPO_COURSE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="lacks column"):
        task.load(CPU)


@pytest.mark.parametrize("name", NEW_TASKS)
def test_gpu_profiles_load_from_the_hub(name, monkeypatch):
    import datasets

    task = get_task(name)
    calls = []

    def fake_load_dataset(hub_id, config=None, split=None, **kw):
        calls.append((hub_id, config, split))
        which = next(w for w, s in task.sources.items() if s.hub_id == hub_id and s.split == split)
        return read_jsonl(task.local_path(which))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = task.load(get_profile("t4"))
    assert data.train and data.heldout and "from the hub" in data.source
    assert {(s.hub_id, s.config, s.split) for s in task.sources.values()} == set(calls)


# ---- prompts ----------------------------------------------------------------------------------------


def test_prompts_are_chat_messages_that_ask_for_the_course_format():
    for name in NEW_TASKS:
        task = get_task(name)
        data = task.load(CPU)
        for row in data.train[:2] + data.heldout[:2]:
            messages = task.to_prompt(row)
            assert [m["role"] for m in messages] == ["system", "user"]
            assert "<think>" in messages[0]["content"] and "<answer>" in messages[0]["content"]
    mbpp = get_task("code").load(CPU).train[0]
    user = code_task.to_prompt(mbpp)[1]["content"]
    assert mbpp["test_list"][0] in user and not any(t in user for t in mbpp["test_list"][1:])  # hidden tests


def test_the_leak_check_finds_a_shown_hidden_test():
    data = get_task("code").load(CPU)
    leaky = dict(data.train[0], text=data.train[0]["text"] + " " + data.train[0]["test_list"][2])
    assert code_task.check_no_leak([leaky], []) != []
    he = dict(data.heldout[0])
    planted = dict(data.train[1], text="assert candidate(2) == 6")
    assert any("hidden assert" in x for x in code_task.check_no_leak([planted], [he]))


# ---- rewards and grading ----------------------------------------------------------------------------


def test_code_references_pass_and_wrong_programs_fail():
    data = get_task("code").load(CPU)
    task = get_task("code")
    for row in data.train[:3] + data.heldout:
        assert task.is_correct(task.demonstration(row), row), row["answer"]
    he = data.heldout[0]  # triple
    assert task.is_correct("    return 3 * x\n", he)  # a HumanEval body continues the stub
    assert not task.is_correct(answer("```python\ndef triple(x):\n    return 6\n```"), he)  # fits the docstring only
    from grpo_course.rewards import get_reward

    mbpp = data.train[0]  # add_numbers; the shown test is add_numbers(1, 2) == 3
    hack = answer("```python\ndef add_numbers(a, b):\n    return 3\n```")
    frac = get_reward("code_pass_fraction")([hack], test_list=[mbpp["test_list"]])
    assert frac == [pytest.approx(1 / 3)]  # the hidden tests catch a program fitted to the shown one


def test_code_pass_at_k_from_hand_counted_samples():
    data = get_task("code").load(CPU)
    rows = data.heldout[:2]
    right = [rows[0]["function_stub"] + rows[0]["canonical_solution"], rows[1]["function_stub"] + "    return 0\n"]
    wrong = [rows[0]["function_stub"] + "    return 0\n"] * 2
    s = get_task("code").score(rows, [[right[0], wrong[0]], [right[1], wrong[1]]])
    # problem 0: 1 of 2 right; problem 1: 0 of 2 -> pass@1 = (1/2 + 0) / 2, pass@2 = (1 + 0) / 2
    assert s.value == pytest.approx(0.25) and s.details["pass@2"] == pytest.approx(0.5)
    assert s.per_sample == [[1.0, 0.0], [0.0, 0.0]]


ROW = {"Ground Truth Answer": "22.857", "Lower Limit": "21.714", "Upper Limit": "24.0"}


@pytest.mark.parametrize("completion, expected", [
    (answer("22.857"), True),
    (answer("22.9 kg/m^2"), True),  # units inside the tags are tolerated
    (answer("24.0"), True),  # the band is closed
    (answer("21.7"), False),  # just below 95%
    (answer("24.01"), False),
    ("The BMI is 22.857.", False),  # no answer tags
    (answer("about 22 or 23"), False),  # a hedge is no answer
])
def test_medcalc_tolerance_table(completion, expected):
    assert medcalc.within_limits(completion, ROW) is expected


def test_medcalc_dates_weeks_days_and_integers_are_exact():
    date = {"Ground Truth Answer": "10/17/2023", "Lower Limit": "10/17/2023", "Upper Limit": "10/17/2023"}
    assert medcalc.within_limits(answer("10/17/2023"), date) and medcalc.within_limits(answer("10/17/2023."), date)
    assert not medcalc.within_limits(answer("10/18/2023"), date)
    weeks = {"Ground Truth Answer": "(4 weeks, 3 days)", "Lower Limit": "(4 weeks, 3 days)",
             "Upper Limit": "(4 weeks, 3 days)"}
    assert medcalc.answer_kind(weeks["Ground Truth Answer"]) == "weeks_days"
    assert medcalc.within_limits(answer("(4, 3)"), weeks) and not medcalc.within_limits(answer("(3, 4)"), weeks)
    score = {"Ground Truth Answer": "4", "Lower Limit": "4", "Upper Limit": "4"}
    assert medcalc.within_limits(answer("4"), score) and not medcalc.within_limits(answer("4.2"), score)


def test_medcalc_answer_kinds():
    assert [medcalc.answer_kind(g) for g in ("22.857", "4", "1,080", "10/17/2023", "(17 weeks, 4 days)",
                                             "('4 weeks', '3 days')")] == \
        ["number", "number", "number", "date", "weeks_days", "weeks_days"]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80), value=st.floats(-1e4, 1e4, allow_nan=False))
def test_medcalc_grading_is_total_and_matches_the_reward(text, value):
    row = medcalc.medcalc_row({**ROW, "Output Type": "decimal"})
    assert medcalc.within_limits(text, row) in (True, False)  # any text: a verdict, never an exception
    for c in (answer(text), answer(f"{value:.3f}")):
        reward, graded = medcalc.agreement_with_reward([row], [c])[0]
        assert reward in (0.0, 1.0) and (reward == 1.0) == graded


def test_medcalc_training_reward_agrees_with_the_graders_limits():
    rows = get_task("medcalc").load(CPU).train
    for row in rows:
        gold = float(row["answer"])
        for factor in (0.90, 0.949, 0.951, 1.0, 1.049, 1.051, 1.2):
            c = answer(f"{gold * factor:.4f}")
            for reward, graded in medcalc.agreement_with_reward([row], [c]):
                assert reward == (1.0 if graded else 0.0), (row["Calculator Name"], factor, reward, graded)


def test_medcalc_accuracy_by_answer_type():
    rows = get_task("medcalc").load(CPU).heldout
    completions = [[answer(r["answer"]), answer("0")] for r in rows]
    s = get_task("medcalc").score(rows, completions)
    assert s.value == pytest.approx(0.5) and s.low < 0.5 < s.high
    assert s.details["accuracy[date]"] == pytest.approx(0.5)


def test_clean_html():
    assert legal_qa.clean_html("<p>A &amp; B</p><p>C <em>d</em></p>") == "A & B\n\nC d"


@pytest.fixture(scope="module")
def panel():
    p = legal_qa.offline_panel(budget_usd=1.0)
    yield p
    p.close()


def test_legal_judges_speak_both_wire_formats_and_rank_answers(panel):
    rows = get_task("legal-qa").load(CPU).heldout[:2]
    good = [answer(r["reference"]) for r in rows]
    junk = [answer("no idea"), answer("")]
    with legal_qa.use_panel(panel):
        from grpo_course.rewards import get_reward

        scores = get_reward("legal_qa_judges")(good + junk, prompts=[get_task("legal-qa").to_prompt(r) for r in rows] * 2,
                                               reference=[r["reference"] for r in rows] * 2)
    assert all(0.0 <= s <= 1.0 for s in scores[:3]) and scores[3] == 0.0  # an empty answer scores 0, no call
    assert min(scores[:2]) > scores[2]
    assert panel.server.count("anthropic") >= 2 and panel.server.count("gemini") >= 2
    assert panel.reward.spent_usd > 0


def test_legal_score_reports_agreement_and_cost(panel):
    rows = get_task("legal-qa").load(CPU).heldout
    s = get_task("legal-qa").score(rows, [[answer(r["reference"]), answer("I am not sure.")] for r in rows],
                                   panel=panel)
    assert s.metric == "judge score" and 0 < s.value < 1
    assert "agreement: mean |difference|" in s.details and s.details["judge cost USD"] > 0
    assert {"judge claude", "judge gemini"} <= set(s.details)


def test_legal_cost_plan_and_hard_cap(panel):
    text = panel.plan(steps=10, completions_per_step=8)
    assert "per step" in text and "hard budget cap: $1.00" in text
    broke = legal_qa.offline_panel(budget_usd=0.0)
    try:
        assert "exceeds the cap" in broke.plan(steps=10, completions_per_step=8)
        out = broke.reward([answer("A contract needs consideration.")], prompts=["Q?"], reference=["Consideration."])
        assert out == [None]  # over budget: not judged, and not a silent 0
        assert broke.server.count() == 0
    finally:
        broke.close()


def test_legal_judge_limits_are_split_over_the_processes_of_a_launch(monkeypatch, capsys):
    """Under `accelerate launch` every rank holds its own panel: each gets 1/N of the budget and the
    concurrency, so the launch as a whole keeps the printed hard cap; the plan counts all ranks'
    completions and is printed by rank 0 only."""
    from types import SimpleNamespace

    from grpo_course.train.pipeline import announce_judges

    four = {"WORLD_SIZE": "4", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "4"}
    one = legal_qa.panel_for(CPU, "offline", 2.0, env={})
    split = legal_qa.panel_for(CPU, "offline", 2.0, env=four)
    try:
        assert (one.processes, one.reward.budget_usd, one.reward.max_concurrency) == (1, 2.0, 8)
        assert (split.processes, split.reward.budget_usd, split.reward.max_concurrency) == (4, 0.5, 2)
        assert split.budget_usd == one.budget_usd == 2.0
        assert "split over 4 processes: $0.50" in split.plan(steps=10, completions_per_step=32)
        assert "split over" not in one.plan(steps=10, completions_per_step=8)
    finally:
        one.close()
        split.close()
    many = legal_qa.panel_for(CPU, "offline", None, env={"WORLD_SIZE": "16"})  # more ranks than the cap
    assert (many.reward.max_concurrency, many.budget_usd) == (1, None)
    many.close()

    settings = {k: SimpleNamespace(value=v) for k, v in (("per_device_train_batch_size", 8),
                ("gradient_accumulation_steps", 2), ("max_steps", 5), ("max_completion_length", 100))}
    for rank in ("0", "1"):
        for k, v in {**four, "RANK": rank, "LOCAL_RANK": rank}.items():
            monkeypatch.setenv(k, v)
        with get_task("legal-qa").judges(CPU, "offline", 2.0) as panel:
            assert panel.reward.budget_usd == 0.5 and panel is legal_qa.active_panel()
            announce_judges(panel, settings, CPU)
        out = capsys.readouterr().out
        if rank == "0":  # 8 x 2 completions on each of 4 ranks per step, all judged
            assert "(64 completions x 2 judges" in out and "hard budget cap: $2.00" in out
        else:
            assert out == ""


# ---- issue #15: format belongs to the task; an unjudged answer is neither a 0 nor trained ------------


@pytest.mark.parametrize("name", NEW_TASKS)
def test_each_task_checks_its_own_format(name):
    """The before/after's "format followed" is the format the task rewards. GSM8K's check wants a number in
    the answer tags; a program, a date or a legal answer in prose read as ~0% "format followed" under it."""
    task = get_task(name)
    data = task.load(CPU)
    demos = [task.demonstration(r) for r in data.train[:3] + data.heldout]  # medcalc's held-out set has a date
    assert all(task.follows_format(d) for d in demos), [d[-80:] for d in demos if not task.follows_format(d)]
    for bad in ("just prose, no tags", "<answer>no reasoning first</answer>", answer("")):
        assert not task.follows_format(bad)
    assert get_task("gsm8k").follows_format(answer("72")) and not get_task("gsm8k").follows_format(answer("a date"))


@pytest.mark.parametrize("name", NEW_TASKS)
def test_the_before_after_reports_the_tasks_own_format(name, monkeypatch):
    """The wiring, not only the check: evaluate_greedy's "format followed" column is what the task's own
    ``follows_format`` says of each completion (a task whose check disagrees with GSM8K's shows it)."""
    import dataclasses

    from grpo_course import compare

    task = get_task(name)
    rows = task.load(CPU).heldout[:2]
    demos = [task.demonstration(r) for r in rows]
    monkeypatch.setattr(compare, "generate", lambda model, tok, prompts, *a, **k: demos[:len(prompts)])
    assert compare.evaluate_greedy(None, None, rows, task=task, max_new_tokens=8).formatted == [True, True]
    only_first = dataclasses.replace(task, follows_format=lambda c: c == demos[0])  # a check unlike GSM8K's
    ev = compare.evaluate_greedy(None, None, rows, task=only_first, max_new_tokens=8)
    assert ev.formatted == [True, False] and ev.format_rate == 0.5


@pytest.fixture()
def broke_panel():
    p = legal_qa.offline_panel(budget_usd=0.0)  # every judge call would cross the cap: nothing is judged
    yield p
    p.close()


def _legal_batch(n=2):
    rows = get_task("legal-qa").load(CPU).heldout[:n]
    return rows, dict(completions=[answer(r["reference"]) for r in rows],
                      prompts=[get_task("legal-qa").to_prompt(r) for r in rows],
                      reference=[r["reference"] for r in rows])


def test_an_unjudged_completion_gets_no_reward_from_any_reward_function(broke_panel):
    """TRL drops a completion from the loss only when every reward function returns None for it; with the
    format reward still scoring, an unjudged completion was trained as if the judges had said 0."""
    from grpo_course.rewards import get_reward

    task = get_task("legal-qa")
    _, batch = _legal_batch()
    with legal_qa.use_panel(broke_panel):
        for name in task.reward_names():
            assert get_reward(name)(**batch) == [None, None], name
    assert broke_panel.server.count() == 0


def test_judged_completions_get_both_rewards_and_are_judged_once_per_batch(panel):
    from grpo_course.rewards import get_reward

    task = get_task("legal-qa")
    _, batch = _legal_batch()
    batch["completions"][1] = "an answer without the course's tags"
    with legal_qa.use_panel(panel):
        calls = panel.server.count()
        judged, fmt = (get_reward(name)(**batch) for name in task.reward_names())
    assert all(0.0 <= x <= 1.0 for x in judged) and fmt == [1.0, 0.0]
    assert panel.server.count() - calls == 2 * 2  # two completions x two judges: the format reward asked no one


def test_an_unjudged_completion_is_excluded_from_the_before_after_not_counted_wrong(broke_panel):
    rows, batch = _legal_batch(1)
    with legal_qa.use_panel(broke_panel):
        assert legal_qa.is_correct(batch["completions"][0], rows[0]) is None
        scored = get_task("legal-qa").score(rows, [[c] for c in batch["completions"]], panel=broke_panel)
    assert scored.value != scored.value and "none could be scored" in scored.summary()  # NaN, not 0.0


def test_the_paired_task_difference_leaves_unscored_problems_out():
    from grpo_course.evaluate.task_score import paired_problem_scores
    from grpo_course.tasks import Scored

    def scored(per_sample):
        return Scored("judge score", 0.0, None, None, len(per_sample), 2, {}, per_sample)

    before = scored([[1.0, None], [None, None], [0.5, 0.5], [0.0, 0.0]])
    after = scored([[1.0, 1.0], [0.0, 0.0], [None, None], [0.5, None]])
    assert paired_problem_scores(before, after) == ([1.0, 0.0], [1.0, 0.5], 2)


def test_the_task_evaluation_of_legal_qa_does_not_count_unjudged_answers_as_zero(capsys):
    """``evaluate_task`` with the adapter off and on and a judge budget of $0: nothing is judged, so there is no
    difference to report (it used to read +0.0%, from zeros on both sides)."""
    from peft import get_peft_model

    from grpo_course.evaluate.task_score import evaluate_task
    from grpo_course.lora import lora_settings, to_peft_config
    from grpo_course.models import tiny_text_model

    model, tokenizer, _ = tiny_text_model("legal-qa", progress=False)
    model = get_peft_model(model, to_peft_config(lora_settings("cpu-tiny")))
    result = evaluate_task("legal-qa", "cpu-tiny", model=model, tokenizer=tokenizer, n=1, temperature=0.0, limit=2,
                           max_new_tokens=80, judge_budget_usd=0.0, progress=False, verbose=False)
    assert result.paired["difference"] is None and result.paired["excluded"] == 2
    text = result.summary()
    assert "no problem was scored both before and after; 2 problem(s) left out" in text
    assert "judge score: none could be scored" in text and "+0.0%" not in text


def test_legal_qa_training_drops_completions_the_judges_cannot_score(runs):
    """Through TRL's GRPOTrainer: with a judge budget of $0 no completion is judged (an empty answer scores 0
    without a call), so every reward function returns None for the others and TRL leaves them out with
    advantage 0, instead of training them on the format reward alone."""
    from grpo_course.train import train

    result = train("legal-qa", "cpu-tiny", steps=1, judge_budget_usd=0.0, compare=False, live=False, verbose=False)
    assert result.global_step == 1
    groups = [json.loads(x) for x in (result.output_dir / "samples.jsonl").read_text().splitlines()]
    unjudged = 0
    for group in groups:
        judges, fmt = group["rewards"]["legal_qa_judges"], group["rewards"]["legal_qa_format"]
        for j, f, advantage in zip(judges, fmt, group["advantages"]):
            assert (j is None) == (f is None), group["rewards"]  # never a format score for an unjudged answer
            if j is None:
                unjudged += 1
                assert advantage == 0.0  # TRL: every reward None -> out of the group's statistics, no update
    assert unjudged > 0


def test_an_empty_held_out_set_is_refused_by_the_task_evaluation(monkeypatch):
    import dataclasses

    from grpo_course.evaluate.task_score import evaluate_task
    from grpo_course.tasks import TaskData
    from grpo_course.usage import UsageError

    medcalc_task = get_task("medcalc")
    empty = dataclasses.replace(medcalc_task, load=lambda p: TaskData(medcalc_task.load(p).train, [], "no held-out"))
    with pytest.raises(UsageError, match="no held-out problems to evaluate"):
        evaluate_task(empty, "cpu-tiny", model=object(), tokenizer=object(), verbose=False)


# ---- the tiny CPU models ----------------------------------------------------------------------------


def test_char_tokenizer_round_trips_and_drops_the_system_prompt():
    from grpo_course.tasks.tiny_text import build_char_tokenizer

    tok = build_char_tokenizer()
    text = "<think>\nx</think>\n<answer>```python\ndef f(a):\n\treturn {'k': a[1:]} # ok\n```</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text and len(ids) == len(text) - sum(len(t) - 1 for t in
                                                                   ("<think>", "</think>", "<answer>", "</answer>"))
    rendered = tok.apply_chat_template([{"role": "system", "content": "SYSTEM"}, {"role": "user", "content": "hi"}],
                                       add_generation_prompt=True, tokenize=False)
    assert rendered == "<user> hi\n<assistant>\n"


@pytest.mark.parametrize("name", NEW_TASKS)
def test_committed_tiny_models_match_the_demonstrations(name):
    from grpo_course.tasks import tiny_text

    task = get_task(name)
    info = tiny_text.read_info(task.data_folder / "tiny")
    assert info is not None, "run python -m grpo_course.tasks.tiny_text"
    assert info["fingerprint"] == tiny_text.fingerprint(name, task.tiny_pairs(), tiny_text.TinyTextSettings()), \
        "data or settings changed: rebuild with python -m grpo_course.tasks.tiny_text"
    assert info["losses"][-1] < 0.5 * info["losses"][0]


# ---- end to end on CPU: grpo-course train --task T and grpo-course eval --task T -------------------


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("GRPO_COURSE_RUNS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("name", NEW_TASKS)
def test_cli_trains_then_evaluates_each_task_on_cpu(name, runs, capsys):
    from grpo_course.cli import main

    assert main(["train", "--task", name, "--profile", "cpu-tiny", "--steps", "1", "--examples", "0"]) == 0
    out = capsys.readouterr().out
    run = runs / f"{name}-cpu-tiny"
    assert (run / "final" / "adapter" / "adapter_config.json").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert rows and rows[-1]["step"] == 1
    assert "step 1/1" in out and "rewards:" in out
    if name == "legal-qa":
        assert "planned judge cost" in out and "hard budget cap" in out
    assert main(["eval", "--task", name, "--profile", "cpu-tiny", "--n", "2", "--limit", "2",
                 "--no-progress", "--examples", "0", "--out", str(runs / "eval")]) == 0
    out = capsys.readouterr().out
    assert "before (adapter off)" in out and "after (adapter on)" in out
    saved = json.loads((runs / "eval" / "task_eval.json").read_text())
    assert saved["task"] == name
    metric = {"code": "pass@1", "medcalc": "tolerance accuracy", "legal-qa": "judge score"}[name]
    assert saved["results"]["after (adapter on)"]["metric"] == metric
    assert saved["results"]["after (adapter on)"]["n_problems"] == 2


def test_the_pipelines_train_routes_a_task_to_its_own_model(runs, capsys):
    """grpo_course.train.train("medcalc") trains medcalc's tiny character model with medcalc's rewards,
    not the GSM8K tiny Llama that the cpu-tiny profile loads by default."""
    from grpo_course.tasks import get_task
    from grpo_course.train import train

    task = get_task("medcalc")
    result = train("medcalc", "cpu-tiny", steps=1, eval_size=2, live=False, compare=False)
    out = capsys.readouterr().out
    assert result.task == "medcalc" and result.global_step == 1
    assert result.reward_names == tuple(task.reward_names(task.default_reward))
    assert "task medcalc: model data/tasks/medcalc/tiny" in out
    committed = json.loads((task.data_folder / "tiny" / "config.json").read_text())
    assert result.model.config.vocab_size == committed["vocab_size"]  # the character model, not the tiny Llama's


def test_cli_gsm8k_train_and_eval_still_run(runs):
    from grpo_course.cli import main

    assert main(["train", "--task", "gsm8k", "--profile", "cpu-tiny", "--steps", "1", "--eval-size", "4",
                 "--examples", "0"]) == 0
    assert (runs / "gsm8k-cpu-tiny" / "final" / "adapter" / "adapter_config.json").is_file()
    assert main(["eval", "--task", "gsm8k", "--profile", "cpu-tiny", "--limit", "4", "--n", "2", "--no-progress",
                 "--examples", "0", "--out", str(runs / "eval-gsm8k")]) == 0
