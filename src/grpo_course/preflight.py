"""Stage 08: the pre-flight check. Before the GPU hours, will GRPO learn on this task with these settings?

GRPO learns only from groups whose completions score differently: a group where all ``G`` samples get
the same reward has advantage 0 everywhere (stage 01), so it teaches nothing. A loss stuck at 0, a flat
reward and "every completion scores the same" are that one problem, and a run usually shows it hours
in. One of the course's source documents (seed 002's production checklist) names the test to run
first: "group size and temperature set so >30% of groups contain at least one positive reward early
in training", next to "reward function unit-tested on edge cases (empty output, malformed JSON,
division by zero)". :func:`preflight` runs both, and more, in a few minutes at most:

1. **Rewards** (:func:`check_rewards`): called exactly as TRL's ``GRPOTrainer`` calls them (``prompts``,
   ``completions`` as chat messages, ``completion_ids``, every dataset column as a keyword list,
   ``trainer_state``, ``log_extra``, ``log_metric``); their declared range (``fn.reward_range``); the
   checklist's edge cases and a seeded fuzzed sample: exceptions, values out of range or not finite,
   ``None`` (TRL reads it as "cannot score"); the cost per call; and, when the task can write a correct
   completion (its ``demonstration``), whether a correct answer gets a positive answer reward at all.
2. **Prompts**: their token lengths under the model's own chat template (what TRL feeds the model) and
   how many exceed the prompt budget; the training pipeline drops those (:mod:`grpo_course.train.data`).
3. **Sampling like the trainer**: the model about to be trained writes ``G`` completions for each of
   ``N`` training prompts at the trainer's temperature and completion length (the settings come from
   :func:`grpo_course.train.config.grpo_settings`, as in a run), through the course's one generation loop,
   with the trainer's prompts per generate call. The rewards are summed with the task's weights as TRL
   sums them (``None`` is skipped; all-``None`` is unscorable). Measured: the fraction of groups with
   reward variance (TRL logs ``frac_reward_zero_std``, one minus this), the fraction with at least one
   positive *answer* reward, the truncation rate (no end-of-sequence token within the budget), the
   reward distribution and the format-versus-answer split (:func:`grpo_course.tasks.own.reward_role`).
4. **Fit**: the stage-03 memory planner (:func:`grpo_course.lora.plan_memory`) for this model, group
   and lengths on this runtime (CPU: this machine's RAM), and the time per step estimated from what was
   just measured here: generation per batch, one forward and backward pass, the rewards.
5. **Verdict**: ``go`` or ``no-go`` with each failed check and its concrete fix, then one
   machine-readable line (:meth:`Report.last_line`).

The thresholds (:data:`THRESHOLDS`): more than 30% of groups with a positive answer reward (the seed's
figure); at least 30% of groups with reward variance (the course's choice: below that most of every
step's generation teaches nothing); at most 20% of completions truncated (the course's choice: a cut-off
completion has no answer, so the budget, not the model, decides its reward). Temperature 0 is greedy
decoding: the ``G`` completions of a prompt are one completion repeated.

What it does not show: that the run will learn the *skill* (a model can gain reward by gaming the
reward: stage 02, stage 05's audit), nor anything about steps later than the first. The numbers come
from a sample of prompts, so a fraction near a threshold can fall either side on another seed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .hardware import Profile
from .tasks import Task, get_task
from .tasks.own import ANSWER, FORMAT, MIXED, reward_role

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Thresholds:
    """Where a measured fraction turns a check into a failure, and why."""

    min_positive: float = 0.30  # seed 002's production checklist: "> 30% of groups ... at least one positive reward"
    min_variance: float = 0.30  # the course's choice: below it most groups give advantage 0 (no gradient)
    max_truncated: float = 0.20  # the course's choice: a cut-off completion scores as wrong whatever it knew
    max_prompts_dropped: float = 0.50  # more than half the data silently gone is a failure, any at all a warning
    slow_reward_ms: float = 200.0  # seed 002's verifier budget: "200ms timeout per check"


THRESHOLDS = Thresholds()
DEFAULT_PROMPTS = {"cpu-tiny": 32}  # GPU profiles: 16 (each group there is G completions of hundreds of tokens)
FUZZ_CASES = 64
LENGTH_SAMPLE = 2000  # prompts whose length is measured for the distribution (all are counted for the budget)


@dataclass
class Finding:
    """One check: its status (``ok``, ``warn`` or ``FAIL``), what was measured, and the fix if it failed."""

    area: str  # "rewards" | "prompts" | "sampling" | "fit"
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"  [{self.status}] {self.name}: {self.detail}"


# ---------------------------------------------------------------------------------------------------- rewards

EMPTY_AND_MALFORMED: tuple[tuple[str, str], ...] = (
    ("empty output", ""),
    ("whitespace only", " \n\t "),
    ("unclosed think", "<think>I start but never finish"),
    ("answer tag without a close", "<answer>12"),
    ("tags in the wrong order", "</answer>12<answer><think></think>"),
    ("two answers", "<think>x</think>\n<answer>1</answer><answer>2</answer>"),
    ("words for the number", "<think>x</think>\n<answer>twelve</answer>"),
    ("malformed JSON", '{"answer": 12,, "steps": [}'),
    ("division by zero in the output", "<think>12/0 = ?</think>\n<answer>12/0</answer>"),
    ("not a number", "<think>x</think>\n<answer>NaN</answer>"),
    ("infinity", "<think>x</think>\n<answer>inf</answer>"),
    ("a 400-digit number", "<think>x</think>\n<answer>" + "9" * 400 + "</answer>"),
    ("control and odd characters", "\x00\ufffd\u200b<answer>\u0661\u0662</answer> \U0001f642"),
    ("a power tower", "<think>x</think>\n<answer>9^9^9^9</answer>"),
    ("very long output", "<think>" + "step. " * 12_000 + "</think><answer>1</answer>"),
)
GOLD_EDGE_CASES: tuple[tuple[str, object], ...] = (
    ("division by zero in the expected answer", "1/0"),
    ("0/0 as the expected answer", "0/0"),
    ("GSM8K-style 1/0", "#### 1/0"),
    ("empty expected answer", ""),
    ("missing expected answer (None)", None),
)
_FRAGMENTS = ("<think>", "</think>", "<answer>", "</answer>", "\n", " ", "42", "-7", "3.5", "1/0", "0/0", "1e308",
              "nan", "inf", "-0", "1,000", "$5", "50%", "\\boxed{12}", "\\frac{1}{0}", "#### 12", "The answer is 12.",
              "forty-two", "{", "}", '{"answer": }', "None", "null", "\u00e9", "\u6570", "\U0001f642", "\u200b",
              "\x00", "<|eot_id|>", "<eos>", "```python\nprint(1/0)\n```", "def f(:\n", "' OR 1=1 --", "%s%n",
              "9" * 80, "<answer><answer>", "</think></think>")


def fuzz_completions(n: int, seed: int = 0, golds: Sequence[object] = ()) -> list[str]:
    """``n`` random completions (seeded) glued from tags, numbers, edge-case strings, the golds' text and
    odd characters; one in 16 is repeated to about 20,000 characters."""
    rng = random.Random(seed)
    pool = list(_FRAGMENTS) + [str(g)[:60] for g in golds if g is not None]
    out = []
    for i in range(n):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        if i % 16 == 15:
            text = (text or "x") * (20_000 // max(1, len(text)) + 1)
        out.append(text)
    return out


def _trainer_state():
    """What TRL passes as ``trainer_state``: a fresh ``TrainerState``, step 0, as early in training."""
    from transformers import TrainerState

    return TrainerState()


def trl_reward_call(fn: Callable, rows: Sequence[dict], texts: Sequence[str], prompts: Sequence, tokenizer=None,
                    state=None) -> list:
    """Call a reward function the way TRL 1.14's ``GRPOTrainer._calculate_rewards`` does for conversational
    prompts: ``prompts``, ``completions`` (one assistant message each), ``completion_ids``, every dataset
    column of the first row as a keyword list (``prompt`` excepted), ``trainer_state``, ``log_extra`` and
    ``log_metric``."""
    keys = [k for k in rows[0] if k not in ("prompt", "completion", "completion_ids")]
    columns = {k: [r.get(k) for r in rows] for k in keys}
    if tokenizer is not None:
        ids = [tokenizer.encode(t, add_special_tokens=False, truncation=True, max_length=4096) for t in texts]
    else:
        ids = [[ord(c) % 256 for c in t[:512]] for t in texts]
    return fn(prompts=list(prompts), completions=[[{"role": "assistant", "content": t}] for t in texts],
              completion_ids=ids, trainer_state=state if state is not None else _trainer_state(),
              log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None, **columns)


def _problem(value, declared) -> str | None:
    """Why one returned value is not a valid reward (``None`` if it is one)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy and torch scalars are numbers too
        except (TypeError, ValueError):
            return f"returned {type(value).__name__} {value!r:.40}, not a number or None"
    if not math.isfinite(value):
        return f"returned {value} (return None for 'cannot score', never NaN or infinity)"
    if declared is not None and not declared[0] - 1e-9 <= value <= declared[1] + 1e-9:
        return f"returned {value:g}, outside its declared range {declared[0]:g}..{declared[1]:g}"
    return None


@dataclass
class RewardProblem:
    reward: str
    case: str
    problem: str


@dataclass
class RewardReport:
    """What :func:`check_rewards` found for each reward function."""

    names: tuple[str, ...]
    roles: dict[str, str]
    ranges: dict[str, tuple[float, float] | None]
    columns: list[str]
    cases: int = 0  # completions each reward was called on
    problems: list[RewardProblem] = field(default_factory=list)
    nones: dict[str, int] = field(default_factory=dict)  # None on rows that have an expected answer
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # completions scored (for the cost per completion)
    demo_positive: int | None = None  # demonstrations whose answer rewards are > 0 (None: no demonstration)
    demo_total: int = 0

    @property
    def errors(self) -> int:
        return len(self.problems)

    def ms_per_completion(self, name: str) -> float:
        return 1000 * self.seconds.get(name, 0.0) / max(1, self.calls.get(name, 0))

    def findings(self, thresholds: Thresholds = THRESHOLDS) -> list[Finding]:
        out = []
        signature = [p for p in self.problems if _signature_error(p)]
        on_rows = [p for p in self.problems if p.case.startswith("TRL's call") and not _signature_error(p)]
        if signature:
            first = {p.reward: p.problem for p in signature}
            out.append(Finding("rewards", "TRL signature", FAIL, "; ".join(f"{n} {m}" for n, m in first.items()),
                               "write the reward as def reward(completions, **kwargs) and read the dataset's columns "
                               f"from kwargs (here: {', '.join(self.columns)}), one value per completion"))
        else:
            out.append(Finding("rewards", "TRL signature", OK, "called as GRPOTrainer calls it, with the dataset's "
                               f"columns {', '.join(self.columns)} as keyword lists: one value per completion"))
        sampled = [p for p in self.problems if p.case.startswith("sample:")]
        if sampled:
            out.append(Finding("rewards", "on the model's completions", FAIL,
                               f"{len(sampled)} failure(s), e.g. {sampled[0].reward} on {sampled[0].case[8:]}: "
                               f"{sampled[0].problem}",
                               "the reward fails on what the model writes: catch the error inside it and return 0.0 "
                               "or None, and keep values inside reward_range"))
        if on_rows:
            out.append(Finding("rewards", "training rows", FAIL,
                               f"{len(on_rows)} failure(s) on real rows, e.g. {on_rows[0].reward} on "
                               f"{on_rows[0].case}: {on_rows[0].problem}",
                               "the reward fails on your own data: catch the error inside it and return 0.0 or None"))
        undeclared = [n for n in self.names if self.ranges[n] is None]
        ranges = ", ".join(f"{n} {r[0]:g}..{r[1]:g}" for n, r in self.ranges.items() if r is not None)
        out.append(Finding("rewards", "declared range", WARN if undeclared else OK,
                           (f"no reward_range on {', '.join(undeclared)}: values are checked for being finite only"
                            + (f"; {ranges}" if ranges else "")) if undeclared else ranges,
                           "set fn.reward_range = (lowest, highest) so out-of-range values are caught"
                           if undeclared else ""))
        for label, prefix in (("edge cases", "edge:"), ("fuzzed sample", "fuzz:")):
            found = [p for p in self.problems if p.case.startswith(prefix)]
            if found:
                first = found[0]
                out.append(Finding("rewards", label, FAIL,
                                   f"{len(found)} failure(s), e.g. {first.reward} on {first.case[len(prefix):].strip()}: "
                                   f"{first.problem}",
                                   "a reward must never raise or return NaN: catch the error inside it and return 0.0 "
                                   "(a wrong answer) or None (cannot score), and keep values inside reward_range"))
            else:
                what = ("empty output, malformed output and JSON, division by zero in the output and in the "
                        "expected answer, a missing expected answer" if prefix == "edge:"
                        else f"{FUZZ_CASES} seeded random completions")
                out.append(Finding("rewards", label, OK, f"no exception, every value valid: {what}"))
        nones = {n: c for n, c in self.nones.items() if c}
        out.append(Finding("rewards", "None handling", WARN if nones else OK,
                           ("None on rows that have an expected answer: " + ", ".join(f"{n} {c}x" for n, c in nones.items())
                            + " (TRL leaves them out of the sum; a completion no reward scores gets no advantage)")
                           if nones else "None only where the expected answer is missing (TRL: cannot score)",
                           "return a number for every completion you can score; None only when it cannot be scored"
                           if nones else ""))
        costs = {n: self.ms_per_completion(n) for n in self.names}
        slow = [n for n, ms in costs.items() if ms > thresholds.slow_reward_ms]
        out.append(Finding("rewards", "cost per call", WARN if slow else OK,
                           ", ".join(f"{n} {ms:.2f} ms" for n, ms in costs.items()) + " per completion",
                           f"cache or simplify {', '.join(slow)}: over {thresholds.slow_reward_ms:g} ms per completion "
                           "(seed 002's verifier budget) adds up to G x batch calls a step" if slow else ""))
        if self.demo_positive is not None:
            ok = self.demo_positive * 2 > self.demo_total
            out.append(Finding("rewards", "a correct answer scores", OK if ok else FAIL,
                               f"{self.demo_positive} of {self.demo_total} correct completions (the task's "
                               "demonstrations) get a positive answer reward",
                               "" if ok else "the answer reward is not positive even for a correct answer, so it can "
                               "never be positive: check that it reads the expected-answer column by its name and "
                               "compares like with like (the text '18' and the number 18.0)"))
        return out


def _call_checked(name: str, fn: Callable, declared, rows: list[dict], has_gold: list[bool], texts: list[str],
                  prompts: list, labels: list[str], report: RewardReport, tokenizer, state) -> None:
    """Score ``texts`` with one reward and record each problem with its case; a batch that raises is retried
    one completion at a time, so every failing case is named."""
    start = time.perf_counter()
    try:
        values = trl_reward_call(fn, rows, texts, prompts, tokenizer, state)
    except Exception:  # noqa: BLE001 - a reward's failure is what we are looking for
        values = []
        for i in range(len(texts)):
            try:
                values.append(trl_reward_call(fn, rows[i:i + 1], texts[i:i + 1], prompts[i:i + 1], tokenizer, state)[0])
            except Exception as one:  # noqa: BLE001
                values.append(None)
                report.problems.append(RewardProblem(name, labels[i], f"raised {type(one).__name__}: {one}"[:200]))
    report.seconds[name] = report.seconds.get(name, 0.0) + time.perf_counter() - start
    report.calls[name] = report.calls.get(name, 0) + len(texts)
    if not isinstance(values, (list, tuple)) or len(values) != len(texts):
        got = f"{len(values)} values" if isinstance(values, (list, tuple)) else type(values).__name__
        report.problems.append(RewardProblem(name, labels[0], f"returned {got} for {len(texts)} completions "
                                                              "(TRL needs one value per completion)"))
        return
    for i, v in enumerate(values):
        problem = _problem(v, declared)
        if problem:
            report.problems.append(RewardProblem(name, labels[i], problem))
        elif v is None and has_gold[i] and not any(p.case == labels[i] and p.reward == name for p in report.problems):
            report.nones[name] = report.nones.get(name, 0) + 1


def reward_functions(task: Task, profile: Profile, reward=None) -> dict[str, Callable]:
    """The reward functions a run of ``task`` on ``profile`` trains with, by registry name."""
    from .rewards import get_reward

    return {n: get_reward(n) for n in task.run_reward_names(profile, reward)}


def reward_weights(task: Task, profile: Profile, names: Sequence[str], reward=None) -> dict[str, float]:
    """The weight TRL gives each reward in a run (the task's ``reward_weights``, else 1 each)."""
    given = task.grpo_overrides(profile, reward).get("reward_weights")
    return dict(zip(names, given if given and len(given) == len(names) else [1.0] * len(names)))


def _signature_error(problem: RewardProblem) -> bool:
    return problem.case.startswith("TRL's call") and problem.problem.startswith("raised TypeError")


def check_rewards(task: Task | str = "gsm8k", profile: Profile | str | None = None, reward=None, *,
                  rows: Sequence[dict] | None = None, tokenizer=None, fuzz: int = FUZZ_CASES, seed: int = 0
                  ) -> RewardReport:
    """Call every reward of the run as TRL will (:func:`trl_reward_call`) on real training rows, the seeds'
    edge cases and ``fuzz`` seeded random completions, and record every exception and invalid value; no
    model is needed. ``rows``: training rows to use (default: the first 8 of the task's training split)."""
    from .models import prepare_runtime

    task = get_task(task)
    profile = task.profile_for(prepare_runtime(profile))  # on a GPU, Unsloth before transformers
    functions = reward_functions(task, profile, reward)
    rows = [dict(r) for r in (rows if rows is not None else task.load(profile).train[:8])]
    if not rows:
        raise ValueError(f"task {task.name}: no training rows to call the rewards with")
    gold = task.gold_column
    report = RewardReport(tuple(functions), {n: reward_role(n, f) for n, f in functions.items()},
                          {n: getattr(f, "reward_range", None) for n, f in functions.items()},
                          [k for k in rows[0] if k not in ("prompt", "completion", "completion_ids")])
    state = _trainer_state()
    demo = task.demonstration
    real = [demo(r) if demo else "<think>\nx\n</think>\n<answer>0</answer>" for r in rows]
    cases: list[tuple[str, dict, str, bool]] = [(f"TRL's call (row {i})", r, t, True)
                                                for i, (r, t) in enumerate(zip(rows, real))]
    cases += [(f"edge: {label}", rows[i % len(rows)], text, True) for i, (label, text) in enumerate(EMPTY_AND_MALFORMED)]
    for label, value in GOLD_EDGE_CASES:
        for text in (real[0], "", "<think>\nx\n</think>\n<answer>1/0</answer>"):
            cases.append((f"edge: {label}", {**rows[0], gold: value}, text, False))
    rng = random.Random(seed)
    for i, text in enumerate(fuzz_completions(fuzz, seed, [r.get(gold) for r in rows])):
        row, has_gold = rows[i % len(rows)], True
        if rng.random() < 0.125:  # the expected answer fuzzed too
            row, has_gold = {**row, gold: rng.choice(_FRAGMENTS)}, False
        cases.append((f"fuzz: case {i} ({text[:30]!r})", row, text, has_gold))
    report.cases = len(cases)
    labels, case_rows, texts, has_gold = (list(x) for x in zip(*cases))
    prompts = [r.get("prompt") or task.to_prompt(r) for r in case_rows]
    head = len(rows)
    for name, fn in functions.items():
        declared = report.ranges[name]
        _call_checked(name, fn, declared, case_rows[:head], has_gold[:head], texts[:head], prompts[:head],
                      labels[:head], report, tokenizer, state)
        if any(_signature_error(p) and p.reward == name for p in report.problems):
            continue  # the signature is wrong: every other call would fail the same way
        _call_checked(name, fn, declared, case_rows[head:], has_gold[head:], texts[head:], prompts[head:],
                      labels[head:], report, tokenizer, state)
    answer = [n for n in functions if report.roles[n] == ANSWER and not any(
        _signature_error(p) and p.reward == n for p in report.problems)]
    if demo is not None and answer:
        weights = reward_weights(task, profile, list(functions), reward)
        scores = [0.0] * head
        for n in answer:
            try:
                values = trl_reward_call(functions[n], rows, real, prompts[:head], tokenizer, state)
            except Exception:  # noqa: BLE001 - already recorded above
                values = [None] * head
            scores = [s + weights[n] * (v if _problem(v, None) is None and v is not None else 0.0)
                      for s, v in zip(scores, values)]
        report.demo_positive, report.demo_total = sum(s > 0 for s in scores), head
    return report


# ---------------------------------------------------------------------------------------------------- sampling


def has_variance(group: Sequence[float]) -> bool:
    """Do a group's scorable rewards differ? TRL counts a group as zero-variance when ``torch.isclose(std, 0)``
    (a standard deviation of at most 1e-8); unscorable completions (NaN) are left out, as TRL's ``nanstd`` does."""
    values = [v for v in group if not math.isnan(v)]
    return len(values) > 1 and statistics.stdev(values) > 1e-8


@dataclass
class Sampled:
    """``G`` completions for each of ``N`` prompts, scored as TRL scores them."""

    texts: list[list[str]]
    truncated: list[list[bool]]
    n_tokens: list[list[int]]
    per_reward: dict[str, list[list[float | None]]]  # reward name -> per group, per completion
    totals: list[list[float]]  # weighted sum (TRL's nansum; NaN when every reward returned None)
    answer: list[list[float]]  # weighted sum of the answer rewards
    roles: dict[str, str]
    weights: dict[str, float]
    generation_seconds: float
    generate_calls: int
    reward_seconds: float
    problems: list = field(default_factory=list)  # RewardProblem: a reward that failed on the model's completions

    @property
    def groups(self) -> int:
        return len(self.totals)

    @property
    def completions(self) -> int:
        return sum(len(g) for g in self.totals)

    @property
    def answer_rewards(self) -> bool:
        return any(r == ANSWER for r in self.roles.values())

    def positive(self, i: int) -> list[bool]:
        """Completions of group ``i`` with a positive answer reward (the total when no reward is answer-only)."""
        values = self.answer[i] if self.answer_rewards else self.totals[i]
        return [not math.isnan(v) and v > 0 for v in values]

    @property
    def frac_variance(self) -> float:
        return sum(has_variance(g) for g in self.totals) / self.groups

    @property
    def frac_positive(self) -> float:
        return sum(any(self.positive(i)) for i in range(self.groups)) / self.groups

    @property
    def frac_truncated(self) -> float:
        return sum(sum(g) for g in self.truncated) / self.completions

    def flat_groups(self) -> tuple[int, int, int]:
        """Zero-variance groups: (every completion positive, none positive, the rest)."""
        right = wrong = other = 0
        for i, g in enumerate(self.totals):
            if has_variance(g):
                continue
            pos = self.positive(i)
            if all(pos):
                right += 1
            elif not any(pos):
                wrong += 1
            else:
                other += 1
        return right, wrong, other

    def distribution(self) -> dict[float, int]:
        """How many completions got each total reward (rounded to 3 decimals)."""
        out: dict[float, int] = {}
        for g in self.totals:
            for v in g:
                key = round(v, 3) if not math.isnan(v) else math.nan
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (math.isnan(kv[0]), kv[0])))

    def split(self) -> dict[str, float]:
        """Mean weighted reward per completion from the format, answer and mixed rewards."""
        out = {FORMAT: 0.0, ANSWER: 0.0, MIXED: 0.0}
        for name, groups in self.per_reward.items():
            values = [v for g in groups for v in g if v is not None]
            out[self.roles[name]] += self.weights[name] * sum(values) / self.completions
        return out

    def mean_tokens(self) -> float:
        return sum(sum(g) for g in self.n_tokens) / self.completions


def combine_rewards(per_reward: dict[str, list[list]], weights: dict[str, float], roles: dict[str, str]
                    ) -> tuple[list[list[float]], list[list[float]]]:
    """Each completion's total reward as TRL forms it (the weighted sum of the rewards that are not None; NaN,
    "unscorable", when every reward returned None) and the weighted sum of its answer rewards."""
    names = list(per_reward)
    totals, answer = [], []
    for i in range(len(per_reward[names[0]])):
        t_row, a_row = [], []
        for j in range(len(per_reward[names[0]][i])):
            scored = [(n, per_reward[n][i][j]) for n in names if per_reward[n][i][j] is not None]
            t_row.append(sum(weights[n] * v for n, v in scored) if scored else math.nan)
            a_row.append(sum(weights[n] * v for n, v in scored if roles[n] == ANSWER))
        totals.append(t_row)
        answer.append(a_row)
    return totals, answer


def sample_groups(model, tokenizer, task: Task, rows: Sequence[dict], functions: dict[str, Callable],
                  weights: dict[str, float], *, num_generations: int, temperature: float, max_completion_length: int,
                  prompts_per_call: int, seed: int = 0, progress: bool = True) -> Sampled:
    """``num_generations`` completions per row's prompt, drawn as the trainer draws them, then scored."""
    from .generation import Decoding, generate_samples

    greedy = temperature == 0
    decoding = Decoding(max_new_tokens=max_completion_length, temperature=temperature,
                        n=1 if greedy else num_generations, seed=seed, batch_size=max(1, prompts_per_call))
    prompts = [r["prompt"] for r in rows]
    start = time.perf_counter()
    groups = generate_samples(model, tokenizer, prompts, decoding, progress=progress,
                              desc=f"preflight: {len(rows)} prompts x {num_generations}")
    gen_seconds = time.perf_counter() - start
    if greedy:  # greedy decoding is deterministic: the G completions of a group are one completion repeated
        groups = [g * num_generations for g in groups]
    texts = [[c.text for c in g] for g in groups]
    roles = {n: reward_role(n, f) for n, f in functions.items()}
    per_reward: dict[str, list[list]] = {n: [] for n in functions}
    state = _trainer_state()
    start = time.perf_counter()
    problems: list[RewardProblem] = []
    for i, (row, prompt, group) in enumerate(zip(rows, prompts, texts)):
        batch = [row] * len(group)
        for name, fn in functions.items():
            try:
                values = list(trl_reward_call(fn, batch, group, [prompt] * len(group), tokenizer, state))
            except Exception as err:  # noqa: BLE001 - a failure is a finding; the group scores as "cannot score"
                problems.append(RewardProblem(name, f"sample: group {i}", f"raised {type(err).__name__}: {err}"[:200]))
                values = [None] * len(group)
            if len(values) != len(group):
                problems.append(RewardProblem(name, f"sample: group {i}", f"returned {len(values)} values for "
                                                                          f"{len(group)} completions"))
                values = [None] * len(group)
            bad = [(j, _problem(v, getattr(fn, "reward_range", None))) for j, v in enumerate(values)]
            problems += [RewardProblem(name, f"sample: group {i} completion {j}", why) for j, why in bad if why]
            per_reward[name].append([None if why else v for v, (_, why) in zip(values, bad)])
    reward_seconds = time.perf_counter() - start
    totals, answer = combine_rewards(per_reward, weights, roles)
    calls = math.ceil(len(rows) / decoding.batch_size)
    return Sampled(texts, [[c.truncated for c in g] for g in groups], [[c.n_tokens for c in g] for g in groups],
                   per_reward, totals, answer, roles, weights, gen_seconds, calls, reward_seconds, problems)


# ---------------------------------------------------------------------------------------------------- fit


def time_training_pass(model, tokenizer, prompts: Sequence[list[dict]], completions: Sequence[str],
                       with_reference: bool) -> float:
    """Seconds for one forward and backward pass over these (prompt + completion) sequences (plus one
    forward without gradients when the run has a KL term: the reference model's log-probabilities). The
    gradients are thrown away; the weights do not change."""
    import torch

    from .chat_format import prompt_token_ids

    seqs = [prompt_token_ids(tokenizer, p) + tokenizer.encode(c, add_special_tokens=False)
            for p, c in zip(prompts, completions)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(s) for s in seqs)
    device = next(model.parameters()).device
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
    labels = ids.masked_fill(mask == 0, -100)
    was_training = model.training
    model.train()
    try:
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        if with_reference:
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)
        return time.perf_counter() - start
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def ram_gib() -> float:
    """This machine's available memory in GiB (what a CPU run can use)."""
    try:
        import psutil

        return psutil.virtual_memory().available / 1024**3
    except ImportError:  # pragma: no cover - psutil comes with accelerate
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def plan_fit(model, profile: Profile, settings: dict):
    """The stage-03 planner's estimate for this model, group, lengths and micro batch on this runtime."""
    from .lora import plan_memory
    from .lora.memory import GPU, OPTIMIZER_BYTES

    value = {k: s.value for k, s in settings.items()}
    optimizer = value.get("optim", "adamw_torch")
    kwargs = dict(num_generations=value["num_generations"], max_prompt_length=profile.max_prompt_length,
                  max_completion_length=value["max_completion_length"], micro_batch=value["per_device_train_batch_size"],
                  optimizer=optimizer if optimizer in OPTIMIZER_BYTES else "adamw_torch")
    if profile.device == "cpu":
        kwargs.update(gpu=GPU("CPU", ram_gib(), bf16=True, fp8=False, note="this machine's available RAM"),
                      gradient_checkpointing=bool(value.get("gradient_checkpointing", False)))
    return plan_memory(getattr(model, "config", model), profile, **kwargs)


# ---------------------------------------------------------------------------------------------------- the report


@dataclass
class StepEstimate:
    generation: float  # seconds a step spends generating
    training: float  # forward + backward (and the reference forward)
    rewards: float
    steps: int

    @property
    def total(self) -> float:
        return self.generation + self.training + self.rewards

    def describe(self) -> str:
        return (f"about {self.total:.2f} s per step on this runtime (generation {self.generation:.2f} s + training "
                f"{self.training:.2f} s + rewards {self.rewards:.2f} s), {self.total * self.steps / 60:.1f} min for "
                f"{self.steps} steps; measured here on one batch: leaves out the optimizer step and TRL's bookkeeping")


@dataclass
class Report:
    """Everything :func:`preflight` measured, the findings, and the verdict."""

    task: str
    profile: str
    model: str
    num_generations: int
    temperature: float
    max_completion_length: int
    max_prompt_length: int
    prompts_per_step: int
    findings: list[Finding]
    rewards: RewardReport | None = None
    sampled: Sampled | None = None
    prompt_lengths: list[int] = field(default_factory=list)
    prompts_total: int = 0
    prompts_dropped: int = 0
    plan: object = None  # grpo_course.lora.MemoryPlan
    step: StepEstimate | None = None
    seconds: float = 0.0
    thresholds: Thresholds = THRESHOLDS

    @property
    def go(self) -> bool:
        return not any(f.status == FAIL for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == FAIL]

    @property
    def reward_errors(self) -> int:
        return self.rewards.errors if self.rewards is not None else 0

    def _fraction(self, name: str) -> float:
        if self.sampled is None:
            return math.nan
        return {"variance": self.sampled.frac_variance, "positive": self.sampled.frac_positive,
                "truncated": self.sampled.frac_truncated}[name]

    @property
    def groups_with_variance(self) -> float:
        return self._fraction("variance")

    @property
    def groups_with_positive(self) -> float:
        return self._fraction("positive")

    @property
    def truncated(self) -> float:
        return self._fraction("truncated")

    def verdict(self) -> str:
        """``preflight: go``, or ``preflight: no-go`` and each failed check with its fix."""
        if self.go:
            return "preflight: go"
        lines = ["preflight: no-go"]
        for f in self.failures:
            lines.append(f"  - {f.name}: {f.detail}")
            lines.append(f"    fix: {f.fix}")
        return "\n".join(lines)

    def last_line(self) -> str:
        return (f"preflight: {'go' if self.go else 'no-go'} groups_with_variance={self.groups_with_variance:.2f} "
                f"groups_with_positive={self.groups_with_positive:.2f} truncated={self.truncated:.2f} "
                f"reward_errors={self.reward_errors}")

    def text(self) -> str:
        head = (f"preflight: task {self.task} on profile {self.profile} (model {self.model})\n"
                f"  sampled like the trainer: G={self.num_generations} completions per prompt, temperature "
                f"{self.temperature:g}, max_completion_length {self.max_completion_length}, "
                f"{self.prompts_per_step} prompts per step; prompt budget {self.max_prompt_length} tokens")
        parts = [head]
        for area in ("rewards", "prompts", "sampling", "fit"):
            found = [f for f in self.findings if f.area == area]
            if found:
                parts.append(f"{area}:")
                parts += [f.line() for f in found]
        parts.append(f"({self.seconds:.0f} s)")
        parts.append(self.verdict())
        parts.append(self.last_line())
        return "\n".join(parts)


def _sampling_findings(s: Sampled, temperature: float, g: int, max_len: int, default_len: int, reward_ok: bool,
                       th: Thresholds) -> list[Finding]:
    out = []
    truncated_fail = s.frac_truncated > th.max_truncated
    need = default_len if max_len < default_len else 2 * max_len
    finished = [n for tok, cut in zip(s.n_tokens, s.truncated) for n, c in zip(tok, cut) if not c]
    out.append(Finding("sampling", "truncated", FAIL if truncated_fail else OK,
                       f"{s.frac_truncated:.0%} of {s.completions} completions hit max_completion_length={max_len} "
                       f"before ending (limit {th.max_truncated:.0%})"
                       + (f"; the ones that ended used {statistics.mean(finished):.1f} tokens on average" if finished
                          else ""),
                       f"lengthen max_completion_length to {need} (--max-completion-length {need}"
                       + ("; the run's default" if need == default_len else "") + "): a completion cut off before its "
                       "answer scores as wrong whatever it knew" if truncated_fail else ""))
    right, wrong, other = s.flat_groups()
    narrow = temperature < 0.7 or g < 4  # sampling too narrow to judge how hard the prompts are
    variance_fail = s.frac_variance < th.min_variance
    fixes = []
    if truncated_fail:
        fixes.append("fix the truncation above first: cut-off completions all score the same")
    else:
        if temperature < 0.7:
            fixes.append(f"raise the temperature to 1.0 (--temperature 1.0; now {temperature:g}"
                         + (", which is greedy decoding: the G completions are one completion repeated"
                            if temperature == 0 else "") + "; the seeds sample at 0.7-1.0)")
        if g < 8:
            fixes.append(f"raise G to 8 (--num-generations 8; now {g}): more samples per prompt, more groups that "
                         "hold both a right and a wrong answer (generation time grows with G)")
        if not narrow and wrong > right:
            fixes.append("the model rarely gets these right: run SFT priming first (train(..., sft_priming=True)) "
                         "or start with easier prompts")
        elif not narrow and right > wrong:
            fixes.append("the model already solves most of these prompts every time: use harder prompts")
    out.append(Finding("sampling", "groups with reward variance", FAIL if variance_fail else OK,
                       f"{s.frac_variance:.0%} of {s.groups} groups (need {th.min_variance:.0%}); groups where every "
                       f"completion scored the same: {right} all positive, {wrong} none positive, {other} other",
                       "; ".join(fixes) if variance_fail else ""))
    positive_fail = s.frac_positive <= th.min_positive
    fixes = []
    if truncated_fail:
        fixes.append("fix the truncation above first")
    elif not reward_ok:
        fixes.append("the answer reward is not positive even on a correct answer (see rewards): fix the reward first")
    elif narrow:  # first see what the model can sample at all
        fixes.append("sample more widely (--temperature 1.0, --num-generations 8)")
    else:
        fixes.append("run SFT priming first so the model writes the answer format (train(..., sft_priming=True); "
                     "on a GPU profile train() primes by default: check the primed model), or start with easier "
                     "prompts")
    what = "a positive answer reward" if s.answer_rewards else "a positive reward (no reward is answer-only)"
    out.append(Finding("sampling", "groups with a positive answer", FAIL if positive_fail else OK,
                       f"{s.frac_positive:.0%} of {s.groups} groups hold at least one completion with {what} "
                       f"(need more than {th.min_positive:.0%}, seed 002's checklist)",
                       "; ".join(fixes) if positive_fail else ""))
    dist = s.distribution()
    shown = ", ".join(f"{k:g}: {v}" for k, v in list(dist.items())[:8]) + (" ..." if len(dist) > 8 else "")
    out.append(Finding("sampling", "reward distribution", OK, f"total reward -> completions {{{shown}}}"))
    split = s.split()
    roles = ", ".join(f"{n} ({s.roles[n]})" for n in s.per_reward)
    out.append(Finding("sampling", "format vs answer", OK,
                       f"mean reward per completion: format {split[FORMAT]:.3f}, answer {split[ANSWER]:.3f}"
                       + (f", format and answer together {split[MIXED]:.3f}" if split[MIXED] else "") + f"; {roles}"))
    return out


def run_settings(task: Task, profile: Profile, reward=None, num_generations: int | None = None,
                 temperature: float | None = None, max_completion_length: int | None = None) -> dict:
    """The GRPOConfig settings a run of ``task`` on ``profile`` would use (:func:`grpo_course.train.config.grpo_settings`),
    with the overrides; a new G keeps the prompts per step (the batch counts completions)."""
    from .train.config import grpo_settings

    base = grpo_settings(profile, "preflight", overrides=task.grpo_overrides(profile, reward))
    overrides = dict(task.grpo_overrides(profile, reward))
    if num_generations is not None:
        if num_generations < 2:
            raise ValueError(f"--num-generations {num_generations}: GRPO compares at least 2 completions per prompt")
        per_prompt = base["per_device_train_batch_size"].value // base["num_generations"].value
        overrides.update(num_generations=num_generations, per_device_train_batch_size=per_prompt * num_generations)
    if temperature is not None:
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"--temperature {temperature}: use 0 (greedy) or more")
        overrides["temperature"] = temperature
    if max_completion_length is not None:
        if max_completion_length < 1:
            raise ValueError(f"--max-completion-length {max_completion_length}: use 1 or more")
        overrides["max_completion_length"] = max_completion_length
    return grpo_settings(profile, "preflight", overrides=overrides)


def _prompt_findings(report: Report, task: Task, profile: Profile, tokenizer, data, seed: int):
    """Prompt lengths under the model's chat template and the pipeline's own budget filter; the prepared
    training rows (``None`` when no prompt fits)."""
    from .chat_format import prompt_token_ids
    from .train.data import prepare_data

    budget = profile.max_prompt_length
    try:
        prepared = prepare_data(task, profile, tokenizer, data=data)
    except ValueError as err:
        report.findings.append(Finding("prompts", "prompt lengths", FAIL, str(err),
                                       f"raise max_prompt_length (now {budget}) or shorten what the prompt builder "
                                       "writes"))
        return None
    rows = data.train if len(data.train) <= LENGTH_SAMPLE else random.Random(seed).sample(data.train, LENGTH_SAMPLE)
    lengths = sorted(len(prompt_token_ids(tokenizer, task.to_prompt(r))) for r in rows)
    report.prompt_lengths, report.prompts_total, report.prompts_dropped = lengths, len(data.train), prepared.dropped_train
    share = prepared.dropped_train / len(data.train)
    status = FAIL if share > report.thresholds.max_prompts_dropped else WARN if prepared.dropped_train else OK
    report.findings.append(Finding(
        "prompts", "prompt lengths", status,
        f"median {statistics.median(lengths):.0f} tokens (min {lengths[0]}, max {lengths[-1]}) under the model's chat "
        f"template; {prepared.dropped_train} of {len(data.train)} training prompts ({share:.0%}) exceed the budget of "
        f"{budget} and would be dropped",
        "" if status == OK else f"raise max_prompt_length (now {budget}) if memory allows (see fit), or shorten the "
        "prompts (the prompt builder, long context columns)"))
    return prepared


def _fit_findings(report: Report, model, tokenizer, profile: Profile, settings: dict, picked: list[dict]) -> None:
    """The stage-03 memory plan and the time per step, from one measured training pass."""
    value = {k: s.value for k, s in settings.items()}
    try:
        plan = plan_fit(model, profile, settings)
        report.plan = plan
        report.findings.append(Finding("fit", "memory (stage-03 planner)", OK if plan.fits else FAIL, plan.verdict(),
                                       "" if plan.fits else "; ".join(plan.suggestions)))
    except (KeyError, TypeError, ValueError) as err:
        report.findings.append(Finding("fit", "memory (stage-03 planner)", WARN, f"not estimated: {err}",
                                       "the planner knows Llama- and Qwen-style configs (data/architectures.json)"))
    s, g, micro, accum = report.sampled, value["num_generations"], value["per_device_train_batch_size"], \
        value["gradient_accumulation_steps"]
    prompts = [r["prompt"] for r in picked for _ in range(g)][:micro]
    texts = [t for group in s.texts for t in group][:micro]
    try:
        train_s = time_training_pass(model, tokenizer, prompts, texts, value.get("beta", 0) != 0)
    except Exception as err:  # noqa: BLE001 - out of memory here is a finding, not a crash
        report.findings.append(Finding("fit", "time per step", FAIL, f"one training pass failed: {type(err).__name__}: "
                                       f"{str(err)[:160]}", "lower per_device_train_batch_size or "
                                       "max_completion_length"))
        return
    report.step = StepEstimate(accum * s.generation_seconds / s.generate_calls, accum * train_s,
                               accum * micro * s.reward_seconds / s.completions, value["max_steps"])
    report.findings.append(Finding("fit", "time per step", OK, report.step.describe()))


def preflight(task: Task | str = "gsm8k", profile: Profile | str | None = None, *, num_generations: int | None = None,
              temperature: float | None = None, max_completion_length: int | None = None, prompts: int | None = None,
              reward=None, model=None, tokenizer=None, seed: int = 0, progress: bool = True,
              thresholds: Thresholds = THRESHOLDS, say: Callable = print) -> Report:
    """Run every check for ``task`` on ``profile`` (default: this runtime's) and return the :class:`Report`.

    ``model``/``tokenizer``: the model about to be trained (default: the task's model for the profile, as
    ``train`` loads it). ``prompts``: groups to sample (default 32 on cpu-tiny, 16 on a GPU). The other
    keywords override the trainer's settings, as ``grpo-course preflight`` does. ``ValueError`` on bad input."""
    from .models import load_model, prepare_runtime, resolve_profile
    from .tasks.tiny_text import torch_threads
    from .train.pipeline import CPU_TINY_THREADS

    start = time.perf_counter()
    task = get_task(task)
    base_profile = prepare_runtime(resolve_profile(profile))  # on a GPU, Unsloth before anything loads TRL
    if prompts is not None and prompts < 1:
        raise ValueError(f"--prompts {prompts}: sample at least 1 prompt")
    run_profile = task.profile_for(base_profile)
    settings = run_settings(task, run_profile, reward, num_generations, temperature, max_completion_length)
    value = {k: s.value for k, s in settings.items()}
    g, temp, max_len = value["num_generations"], float(value["temperature"]), value["max_completion_length"]
    micro = value["per_device_train_batch_size"]
    n_prompts = prompts or DEFAULT_PROMPTS.get(run_profile.name, 16)
    threads = CPU_TINY_THREADS if run_profile.name == "cpu-tiny" else None  # as the training run uses
    with torch_threads(threads), task.judges(run_profile):
        if model is None:
            model, tokenizer, _ = load_model(base_profile, task)  # the model train() would load
        name = _short(getattr(getattr(model, "config", None), "name_or_path", "") or run_profile.model_id)
        say(f"preflight: task {task.name}, profile {run_profile.name}, model {name}: the rewards, the prompts, "
            f"{n_prompts} groups of {g} completions, the fit")
        report = Report(task.name, run_profile.name, name, g, temp, max_len, run_profile.max_prompt_length,
                        micro * value["gradient_accumulation_steps"] // g, [], thresholds=thresholds)
        prepared = _prompt_findings(report, task, run_profile, tokenizer, task.load(run_profile), seed)
        if prepared is None:  # nothing to sample from
            report.seconds = time.perf_counter() - start
            return report
        rows = list(prepared.train)
        picked = rows if len(rows) <= n_prompts else random.Random(seed).sample(rows, n_prompts)
        report.rewards = check_rewards(task, run_profile, reward, rows=picked[:8], tokenizer=tokenizer, seed=seed)
        functions = reward_functions(task, run_profile, reward)
        report.sampled = sample_groups(model, tokenizer, task, picked, functions,
                                       reward_weights(task, run_profile, list(functions), reward), num_generations=g,
                                       temperature=temp, max_completion_length=max_len,
                                       prompts_per_call=max(1, micro // g), seed=seed, progress=progress)
        report.rewards.problems += report.sampled.problems
        report.findings[:0] = report.rewards.findings(thresholds)
        default_len = run_settings(task, run_profile, reward)["max_completion_length"].value
        demo = report.rewards.demo_positive
        reward_ok = demo is None or demo * 2 > report.rewards.demo_total
        report.findings += _sampling_findings(report.sampled, temp, g, max_len, default_len, reward_ok, thresholds)
        _fit_findings(report, model, tokenizer, run_profile, settings, picked)
    report.seconds = time.perf_counter() - start
    return report


def _short(name: str) -> str:
    from .paths import REPO_ROOT

    return name.replace(str(REPO_ROOT) + "/", "")


# ---------------------------------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="gsm8k",
                   help="a course task (gsm8k, code, medcalc, legal-qa) or your own: module:NAME, a Task object "
                        "in an importable module or a .py file (default: gsm8k)")
    p.add_argument("--profile", default=None, help="hardware profile (default: detected; GRPO_COURSE_PROFILE)")
    p.add_argument("--num-generations", type=int, default=None, help="G, completions per prompt (default: the run's)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the run's)")
    p.add_argument("--max-completion-length", type=int, default=None,
                   help="completion budget in tokens (default: the run's)")
    p.add_argument("--prompts", type=int, default=None, help="prompts to sample (default: 32 on cpu-tiny, 16 on GPU)")
    p.add_argument("--reward", default=None, help="reward set or name (default: the run's)")
    p.add_argument("--seed", type=int, default=0)


def load_task(spec: str) -> Task:
    """A registered task's name, or ``module:NAME`` / ``path/to/file.py:NAME`` holding a :class:`Task`."""
    if ":" not in spec:
        return get_task(spec)
    import importlib
    import importlib.util
    from pathlib import Path

    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"--task {spec}: no file {path}")
        spec_obj = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec_obj)
        spec_obj.loader.exec_module(module)
    else:
        sys.path.insert(0, ".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"--task {spec}: cannot import {module_name} ({err})") from None
    task = getattr(module, attr, None)
    if not isinstance(task, Task):
        raise ValueError(f"--task {spec}: {attr} in {module_name} is not a grpo_course Task")
    return task


def run(args: argparse.Namespace) -> int:
    """``grpo-course preflight``: 0 go, 1 no-go, 2 a usage error (one ``error:`` line)."""
    from .hardware import UnknownProfileError, get_profile

    try:
        task = load_task(args.task)
        profile = get_profile(args.profile) if args.profile else None
        if args.prompts is not None and args.prompts < 1:
            raise ValueError(f"--prompts {args.prompts}: sample at least 1 prompt")
        run_settings(task, task.profile_for(profile or _current()), args.reward, args.num_generations,
                     args.temperature, args.max_completion_length)
    except (UnknownProfileError, ValueError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    report = preflight(task, profile, num_generations=args.num_generations, temperature=args.temperature,
                       max_completion_length=args.max_completion_length, prompts=args.prompts, reward=args.reward,
                       seed=args.seed)
    print(report.text())
    return 0 if report.go else 1


def _current() -> Profile:
    from .hardware import current_profile

    return current_profile()[0]
