"""``grpo_course.tasks.own``: a learner's data file, prompt builder and rewards become one Task the pipeline trains."""

import json

import pytest

from grpo_course.hardware import get_profile
from grpo_course.jsonl import read_jsonl
from grpo_course.paths import data_dir
from grpo_course.rewards import get_reward
from grpo_course.tasks import TASKS, get_task
from grpo_course.tasks.own import (
    EXAMPLE_FILE,
    example_rows,
    own_task,
    read_rows,
    reward_role,
    split_heldout,
)

# tasks and rewards registered here are gone after each test: other test files count the course's own
pytestmark = pytest.mark.usefixtures("registries_restored")

CPU = get_profile("cpu-tiny")
ROWS = [{"q": f"What is {n} minus 1?", "gold": str(n - 1), "kind": "minus"} for n in range(2, 12)]


def exact(completions, gold, **kwargs):
    return [1.0 if f"<answer>{g}</answer>" in c[0]["content"] else 0.0 for c, g in zip(completions, gold)]


def my_format(completions, **kwargs):
    return [0.5 if "<answer>" in c[0]["content"] else 0.0 for c in completions]


def test_jsonl_csv_and_python_rows_read_the_same(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    csv = tmp_path / "d.csv"
    csv.write_text("q,gold,kind\n" + "".join(f"{r['q']},{r['gold']},{r['kind']}\n" for r in ROWS))
    assert read_rows(jsonl)[0] == read_rows(csv)[0] == read_rows(ROWS)[0] == ROWS


@pytest.mark.parametrize("name, content, message", [
    ("empty.jsonl", "", "no rows"),
    ("rows.txt", "a", "a data file is .jsonl or .csv"),
    ("list.jsonl", "[1, 2]\n", "every row must be an object"),
    ("bad.jsonl", "{not json\n", "not JSON"),
])
def test_bad_data_files_get_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_rows(path)
    with pytest.raises(ValueError, match="no data file"):
        read_rows(tmp_path / "missing.jsonl")


def test_every_fifth_row_is_held_out_and_never_trained_on():
    train, held = split_heldout(list(range(10)), 5)
    assert held == [4, 9] and train == [0, 1, 2, 3, 5, 6, 7, 8]
    with pytest.raises(ValueError):
        split_heldout([1, 2], 1)


@pytest.mark.parametrize("name, fn, role", [
    ("tag_format", get_reward("tag_format"), "format"),
    ("mine.my_format", my_format, "format"),
    ("tag_answer", get_reward("tag_answer"), "answer"),
    ("mine.exact", exact, "answer"),
    ("composite_math", get_reward("composite_math"), "mixed"),
    ("tag", get_reward("tag"), "mixed"),
])
def test_reward_roles_from_the_name(name, fn, role):
    assert reward_role(name, fn) == role


def test_a_reward_can_say_its_own_role():
    def scored(completions, **kwargs):
        return [0.0] * len(completions)

    scored.reward_role = "format"
    assert reward_role("mine.scored", scored) == "format"
    scored.reward_role = "style"
    with pytest.raises(ValueError, match="reward_role"):
        reward_role("mine.scored", scored)


def test_own_task_trains_with_your_rewards_and_grades_by_the_answer_reward():
    task = own_task("minus-one", ROWS, lambda row: row["q"], [my_format, exact], weights=[0.2, 1.0],
                    answer_column="gold")
    assert get_task("minus-one") is task
    assert task.run_reward_names(CPU) == ("minus-one.my_format", "minus-one.exact")
    assert get_reward("minus-one.exact") is exact
    assert task.grpo_overrides(CPU)["reward_weights"] == [0.2, 1.0]
    data = task.load(CPU)
    assert len(data.train) == 8 and len(data.heldout) == 2 and data.heldout[0] == ROWS[4]
    assert task.to_prompt(ROWS[0])[-1] == {"role": "user", "content": "What is 2 minus 1?"}
    row = {**ROWS[0], "prompt": task.to_prompt(ROWS[0])}  # rows in a run carry their prompt
    assert task.is_correct("<think>x</think><answer>1</answer>", row)
    assert not task.is_correct("<think>x</think><answer>2</answer>", row)  # the format reward alone is not "correct"


def test_a_prompt_builder_may_return_messages_but_nothing_else():
    messages = [{"role": "user", "content": "hi"}]
    assert own_task("msgs", ROWS, lambda row: messages, [exact], answer_column="gold",
                    register=False).to_prompt(ROWS[0]) == messages
    with pytest.raises(TypeError, match="string or a list of chat messages"):
        own_task("bad-prompt", ROWS, lambda row: 3, [exact], answer_column="gold", register=False).to_prompt(ROWS[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "GSM 8K"}, "lower-case"),
    ({"name": "gsm8k"}, "is a course task"),
    ({"data": None}, "needs data"),
    ({"rewards": []}, "at least one reward"),
    ({"rewards": [my_format]}, "none of the rewards pays for the answer"),
    ({"rewards": [exact], "weights": [1.0, 2.0]}, "2 weights for 1 rewards"),
    ({"rewards": [exact, exact]}, "listed twice"),
    ({"rewards": [42]}, "a reward is a function"),
])
def test_own_task_refuses_what_cannot_work(kwargs, message):
    args = {"name": "refused", "data": ROWS, "prompt": lambda row: row["q"], "rewards": [exact], "answer_column": "gold",
            "register": False, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        own_task(**args)


def test_a_missing_answer_column_is_named_when_the_data_loads():
    task = own_task("no-gold", ROWS, lambda row: row["q"], [exact], answer_column="answer", register=False)
    with pytest.raises(ValueError, match="row 0 has no 'answer' column"):
        task.load(CPU)


def test_a_hub_dataset_is_read_on_a_gpu_profile_and_the_file_on_the_cpu(monkeypatch):
    from grpo_course.tasks import own

    calls = []
    monkeypatch.setattr(own, "_hub_rows", lambda hub, split, config: calls.append((hub, split)) or ROWS[:5])
    task = own_task("hub-task", ROWS, lambda row: row["q"], [exact], answer_column="gold", hub="me/mine",
                    register=False)
    assert len(task.load(CPU).train) == 8 and calls == []
    assert len(task.load(get_profile("t4")).train) == 4 and calls == [("me/mine", "train")]


def test_re_running_a_notebook_cell_replaces_your_task_and_reward():
    own_task("again", ROWS, lambda row: row["q"], [exact], answer_column="gold")
    edited = {}
    exec("def exact(completions, gold, **kwargs):\n    return [0.0] * len(completions)\n", edited)  # cell re-run
    task = own_task("again", ROWS, lambda row: row["q"], [edited["exact"]], answer_column="gold")
    assert TASKS["again"] is task and get_reward("again.exact") is edited["exact"]


def test_the_shipped_example_file_is_what_example_rows_makes():
    shipped = read_jsonl(data_dir() / EXAMPLE_FILE)
    assert shipped == example_rows()
    assert len(shipped) == 300 and set(shipped[0]) == {"problem", "result", "topic"}
    from grpo_course.tiny.problems import load_split

    seen = {p["question"] for split in ("train", "test") for p in load_split(split)}
    assert not seen & {r["problem"] for r in shipped}  # none of the tiny model's own problems


def test_the_before_after_shows_the_gold_answer_from_your_column():
    from grpo_course.compare import Evaluation, before_after

    task = own_task("shown", ROWS, lambda row: row["q"], [exact], answer_column="gold", register=False)
    rows = [{**r, "prompt": task.to_prompt(r)} for r in ROWS[:2]]

    def graded(model, tokenizer, problems, name="model", use_adapter=True, task=None):
        return Evaluation(["<answer>1</answer>", "<answer>0</answer>"], [True, False], [True, True], name, problems)

    before = graded(None, None, rows, "before")
    cmp = before_after(None, None, rows, graded, before=before, task=task)
    assert "gold answer: 1" in cmp.side_by_side(n=2) and "gold answer: 2" in cmp.side_by_side(n=2)
