"""Task ``code``: write Python functions, rewarded by unit tests run in the sandbox.

**Data.** Train on MBPP (``google-research-datasets/mbpp``, config ``full``, split ``train``: 374
problems; CC BY 4.0; columns ``task_id``, ``text``, ``code``, ``test_list``, ``test_setup_code``,
``challenge_test_list``). Evaluate on HumanEval (``openai/openai_humaneval``, split ``test``: 164
problems; MIT; columns ``task_id``, ``prompt``, ``canonical_solution``, ``test``, ``entry_point``). CPU
runs read ``data/tasks/code/mbpp_train.jsonl`` and ``humaneval_test.jsonl``: problems written for the
course (task ids 9001+ and ``CourseEval/N``) in exactly those columns.

**Hidden tests.** The seeds warn that training on a public test suite inflates scores ("inflated
HumanEval scores that fail on renamed function signatures; hold out secret tests"). So: the training
prompt shows one of MBPP's three asserts (it pins the function's name and signature) and the reward
runs all three, two of which the model never saw; HumanEval is never trained on, its ``check``
function never appears in a prompt (:func:`check_no_leak` verifies both), and its docstring examples
are the only tests the model sees there.

**Reward** (stage 02's sandboxed rewards): ``"tests"`` = ``code_pass_fraction`` (fraction of asserts
that pass, 0..1) with weight 1.0 + ``format`` (think block then a non-empty answer block) with weight
0.2; ``"all_pass"`` uses ``code_all_pass`` (1 only if every assert passes) instead: sparser, but a
program that special-cases the visible assert gains nothing.

**Metric.** pass@k on HumanEval-style held-out problems: ``n`` samples each, run in the sandbox
against the hidden ``check``; the unbiased estimator of Chen et al. 2021 (``grpo_course.evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..chat_format import ANSWER_END, ANSWER_START, REASONING_END, REASONING_START, format_response
from ..hardware import Profile
from .base import (
    HubSource,
    Scored,
    Task,
    TaskData,
    answer_block_format_followed,
    check_columns,
    local_or_hub,
    register_task,
)

MBPP_COLUMNS = ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")
HUMANEVAL_COLUMNS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")

SOURCES = {
    "train": HubSource("google-research-datasets/mbpp", "train", "CC BY 4.0", "374 problems (full config)",
                       "mbpp_train.jsonl", config="full",
                       url="https://huggingface.co/datasets/google-research-datasets/mbpp"),
    "heldout": HubSource("openai/openai_humaneval", "test", "MIT", "164 problems", "humaneval_test.jsonl",
                         url="https://huggingface.co/datasets/openai/openai_humaneval"),
}

SYSTEM_PROMPT = (
    f"You are a careful Python programmer. Think briefly between {REASONING_START} and {REASONING_END}, "
    f"then give the complete function in one ```python block between {ANSWER_START} and {ANSWER_END}."
)
VISIBLE_TESTS = 1  # MBPP asserts shown in the training prompt; the rest stay hidden


def _lines(code: str) -> str:
    return code.replace("\r\n", "\n").strip("\n")


def mbpp_row(raw: dict) -> dict:
    """An MBPP row (hub columns kept) with the pipeline's gold column ``answer`` (the reference code)."""
    return {**raw, "code": _lines(raw["code"]), "test_list": list(raw["test_list"]),
            "answer": _lines(raw["code"])}


def humaneval_row(raw: dict) -> dict:
    """A HumanEval row. Its ``prompt`` column (the function stub) is kept as ``function_stub``: the
    pipeline's ``prompt`` column holds the chat messages."""
    row = {k: v for k, v in raw.items() if k != "prompt"}
    row["function_stub"] = raw["prompt"]
    row["answer"] = raw["prompt"] + raw["canonical_solution"]
    return row


def to_prompt(row: dict) -> list[dict]:
    """Chat prompt: MBPP rows show the task and one assert; HumanEval rows show the function stub."""
    if "function_stub" in row:
        user = ("Complete this Python function. Give the whole function, signature included.\n"
                f"```python\n{row['function_stub']}```")
    else:
        shown = "\n".join(row["test_list"][:VISIBLE_TESTS])
        user = f"{row['text']}\nYour function must pass tests like this one:\n{shown}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def demonstration(row: dict) -> str:
    """A well-formed completion from the reference solution (SFT priming; the CPU model's warm start)."""
    return format_response("I write the function.",
                           f"```python\n{row['answer']}\n```")


def _reward_columns(rows: Sequence[dict]) -> dict:
    if all("function_stub" in r for r in rows):
        return {"test": [r["test"] for r in rows], "entry_point": [r["entry_point"] for r in rows],
                "prompts": [r["function_stub"] for r in rows]}
    return {"test_list": [r["test_list"] for r in rows],
            "test_setup_code": [r.get("test_setup_code", "") for r in rows]}


def passes(completions: Sequence[str], rows: Sequence[dict]) -> list[bool | None]:
    """Does each completion pass every hidden test of its row? (``None``: the sandbox could not run it.)"""
    from ..rewards.code import code_all_pass_reward

    scores = code_all_pass_reward(list(completions), **_reward_columns(rows))
    return [None if s is None else s == 1.0 for s in scores]


def is_correct(completion: str, row: dict) -> bool:
    return bool(passes([completion], [row])[0])


def check_no_leak(train: Sequence[dict], heldout: Sequence[dict]) -> list[str]:
    """Problems whose hidden tests show up in a training prompt, or that are in both splits (want: [])."""
    found = []
    train_prompts = "\n".join(m["content"] for r in train for m in to_prompt(r))
    train_ids = {str(r.get("task_id")) for r in train}
    for r in heldout:
        hidden = [line.strip() for line in r.get("test", "").splitlines() if line.strip().startswith("assert")]
        if any(h in train_prompts for h in hidden):
            found.append(f"{r['task_id']}: a hidden assert appears in a training prompt")
        if str(r.get("task_id")) in train_ids:
            found.append(f"{r['task_id']}: in both splits")
    for r in train:
        for hidden in r["test_list"][VISIBLE_TESTS:]:
            if hidden in "\n".join(m["content"] for m in to_prompt(r)):
                found.append(f"{r['task_id']}: a hidden MBPP assert is shown in its prompt")
    return found


def load(profile: Profile) -> TaskData:
    """MBPP train for training and HumanEval for held-out evaluation (hub on GPU, local files on CPU)."""
    train_raw, train_src = local_or_hub(TASK, "train", profile)
    held_raw, held_src = local_or_hub(TASK, "heldout", profile)
    check_columns(train_raw, MBPP_COLUMNS, train_src)
    check_columns(held_raw, HUMANEVAL_COLUMNS, held_src)
    return TaskData([mbpp_row(r) for r in train_raw], [humaneval_row(r) for r in held_raw],
                    f"train: {train_src}; held-out: {held_src}")


def score(task: Task, rows: list[dict], completions: list[list[str]], profile=None, **kw) -> Scored:
    """pass@1 (and pass@k for k = 2, 5, n) with the hidden tests, and a bootstrap interval on pass@1."""
    from ..metrics import bootstrap_interval, mean_pass_at_k

    flat_rows = [r for r, group in zip(rows, completions) for _ in group]
    flat = [c for group in completions for c in group]
    verdicts = passes(flat, flat_rows)
    per_sample, i = [], 0
    for group in completions:
        per_sample.append([1.0 if v else 0.0 for v in verdicts[i:i + len(group)]])
        i += len(group)
    n = min(len(g) for g in completions) if completions else 0
    counts = [(len(g), int(sum(g))) for g in per_sample]
    details: dict = {"unrunnable": sum(v is None for v in verdicts)}
    for k in sorted({k for k in (2, 5, n) if 1 < k <= n}):
        details[f"pass@{k}"] = mean_pass_at_k(counts, k)
    value = mean_pass_at_k(counts, 1)
    interval = bootstrap_interval([c / m for m, c in counts]) if len(counts) > 1 else None
    return Scored("pass@1", value, interval.low if interval else None, interval.high if interval else None,
                  len(rows), n, details, per_sample)


TASK = register_task(Task(
    name="code",
    description="write a Python function from a description; reward = hidden unit tests in a sandbox",
    load=load,
    to_prompt=to_prompt,
    reward_sets={"tests": ("code_pass_fraction", "format"), "all_pass": ("code_all_pass", "format")},
    default_reward="tests",
    is_correct=is_correct,
    demonstration=demonstration,
    notes={"heldout": "HumanEval (never trained on; its check() tests never shown)",
           "pitfall": "training on a public test suite inflates its scores: hidden tests for eval only"},
    sources=SOURCES,
    models={"cpu-tiny": "data/tasks/code/tiny", "t4": "unsloth/Qwen2.5-Coder-0.5B-Instruct",
            "l4": "unsloth/Qwen2.5-Coder-0.5B-Instruct", "large": "unsloth/Qwen2.5-Coder-0.5B-Instruct"},
    reward_weights={"tests": (1.0, 0.2), "all_pass": (1.0, 0.2)},
    lengths={"cpu-tiny": (400, 192), "t4": (512, 512), "l4": (512, 768), "large": (512, 1024)},
    metric="pass@k on HumanEval with the hidden check() tests, run in the sandbox",
    colab="a T4 is enough (Qwen2.5-Coder-0.5B, 16-bit LoRA); needs the code sandbox (Linux, as on Colab)",
    scorer=score,
    follows_format=answer_block_format_followed,
))
