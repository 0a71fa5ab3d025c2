"""The legal-QA judge panel: two LLM judges behind one reward with a budget cap, its cost plan, and the
panel a run makes active (``legal_qa_judges`` and ``legal_qa_format``, the registry rewards of task
``legal-qa``).

:func:`panel_for` picks the judges for a profile: on a GPU, Claude (``ANTHROPIC_API_KEY``) and Gemini
(``GEMINI_API_KEY``) from the environment or Colab's secrets; on CPU, and whenever ``judges="offline"``,
local fake servers speaking the providers' wire formats (:mod:`.fake_judges`, a word-overlap heuristic,
**not** a model of legal quality). :meth:`JudgePanel.plan` is the cost plan printed before training;
:func:`judging` makes a panel active for a run and closes it afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..hardware import Profile

log = logging.getLogger(__name__)

DEFAULT_BUDGET_USD = 2.0  # hard cap per run; raise it knowingly


@dataclass
class JudgePanel:
    """Two or more judges behind one :class:`~grpo_course.rewards.judges.JudgeReward` (with its budget
    cap), and the local fake server when the judges are offline."""

    reward: object  # JudgeReward
    kind: str  # "offline fake servers" or "API"
    server: object | None = None  # FakeJudgeServer
    processes: int = 1  # processes of the launch; each holds one panel with 1/processes of the limits
    _last: tuple | None = field(default=None, repr=False)  # (batch key, rewards) of the latest batch judged

    def judged(self, completions, prompts=None, **kwargs) -> list[float | None]:
        """The judges' reward for each completion of a batch (``None``: unscored). TRL calls every reward
        function of a step with the same batch; the second asks are answered from the first call, so a batch
        is judged, logged and paid for once whichever reward function asks first."""
        state = kwargs.get("trainer_state")
        key = (getattr(state, "global_step", None), _texts(completions), _texts(prompts),
               _texts(kwargs.get(getattr(self.reward, "reference_column", "reference"))))
        if self._last is not None and self._last[0] == key:
            return list(self._last[1])
        rewards = list(self.reward(completions, prompts=prompts, **kwargs))
        self._last = (key, rewards)
        return list(rewards)

    @property
    def judges(self) -> list:
        return list(self.reward.judges)

    @property
    def budget_usd(self) -> float | None:
        """The run's hard cap over all processes (each process's reward holds its share)."""
        cap = self.reward.budget_usd
        return None if cap is None else cap * self.processes

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def step_cost(self, completions_per_step: int, prompt_tokens: int = 300, completion_tokens: int = 400
                  ) -> dict[str, float]:
        from .judges import estimate_step_cost

        return estimate_step_cost(self.judges, completions_per_step, prompt_tokens, completion_tokens)

    def plan(self, steps: int, completions_per_step: int, prompt_tokens: int = 300,
             completion_tokens: int = 400) -> str:
        """The cost plan printed before training: per step, for the run, and the hard cap.
        ``completions_per_step``: completions judged per step over all processes of the launch."""
        per = self.step_cost(completions_per_step, prompt_tokens, completion_tokens)
        total = per["total"] * steps
        cap = self.budget_usd
        names = ", ".join(f"{j.name} ({j.model})" for j in self.judges)
        split = (f" (split over {self.processes} processes: ${self.reward.budget_usd:.2f} and at most "
                 f"{self.reward.max_concurrency} requests in flight each)" if self.processes > 1 and cap is not None
                 else "")
        lines = [f"judges: {names} via {self.kind}",
                 f"planned judge cost: ${per['total']:.4f} per step ({completions_per_step} completions x "
                 f"{len(self.judges)} judges, <= {prompt_tokens} prompt + {completion_tokens} completion tokens "
                 f"each) x {steps} steps = ${total:.2f}",
                 "hard budget cap: " + ("none (budget_usd=None)" if cap is None else
                                        f"${cap:.2f}{split}: calls that could cross it are not made; their "
                                        "completions get reward None")]
        if cap is not None and total > cap:
            lines.append(f"WARNING: the plan (${total:.2f}) exceeds the cap; judging stops after about "
                         f"{int(cap / per['total']) if per['total'] else steps} steps")
        if self.server is not None:
            lines.append("(offline: the fake servers answer with a heuristic, not a model; the cost shown "
                         "is what the real APIs would charge for the same tokens)")
        return "\n".join(lines)


def offline_panel(budget_usd: float | None = DEFAULT_BUDGET_USD, providers: Sequence[str] = ("anthropic", "gemini"),
                  **options) -> JudgePanel:
    """Judges on a local fake server speaking the Anthropic and Gemini wire formats (no network)."""
    from .fake_judges import FakeJudgeServer
    from .judges import make_judge_reward

    server = FakeJudgeServer(max_requests=100_000).start()
    reward = make_judge_reward(server.judges(tuple(providers)), cache_dir=None, budget_usd=budget_usd,
                               name="legal_qa_judges", **options)
    return JudgePanel(reward, "offline fake servers (127.0.0.1)", server)


def api_panel(budget_usd: float | None = DEFAULT_BUDGET_USD, judges: Sequence | None = None, **options) -> JudgePanel:
    """Claude and Gemini (the seeds' pair) with keys from the environment or Colab secrets."""
    from .judges import default_judges, make_judge_reward

    judges = list(judges) if judges is not None else default_judges()
    missing = [j.name for j in judges if j.require_key and j.key() is None]
    if missing:
        raise RuntimeError(
            f"legal-qa: no API key for judge(s) {', '.join(missing)}. Set ANTHROPIC_API_KEY and GEMINI_API_KEY "
            "(Colab: the key icon in the left bar, then enable notebook access), or train with "
            "judges='offline' to use the local fake judges (plumbing only, no real legal grading).")
    reward = make_judge_reward(judges, budget_usd=budget_usd, name="legal_qa_judges", **options)
    return JudgePanel(reward, "API")


DEFAULT_CONCURRENCY = 8  # judge requests in flight over the whole launch (JudgeReward's own default)


def panel_for(profile: Profile, judges: str = "auto", budget_usd: float | None = DEFAULT_BUDGET_USD,
              max_concurrency: int = DEFAULT_CONCURRENCY, env=None) -> JudgePanel:
    """``judges``: ``"auto"`` (offline on CPU, the APIs on a GPU), ``"offline"`` or ``"api"``.

    ``budget_usd`` and ``max_concurrency`` are for the whole launch: under ``accelerate launch`` every
    process scores its own completions with its own panel, so each gets ``1/processes`` of both
    (:func:`grpo_course.distributed.judge_share`; ``env``: the launcher's variables, default ``os.environ``)."""
    from ..distributed import dist_info, judge_share

    if judges not in ("auto", "offline", "api"):
        raise ValueError("judges must be 'auto', 'offline' or 'api'")
    processes = dist_info(env).world_size
    share = judge_share(max(int(max_concurrency), processes), budget_usd, env=env)
    offline = judges == "offline" or (judges == "auto" and profile.device == "cpu")
    make = offline_panel if offline else api_panel
    panel = make(share.budget_usd, max_concurrency=share.max_concurrency)
    panel.processes = processes
    return panel


_STACK: list[JudgePanel] = []
_DEFAULT: list[JudgePanel] = []
_LOCK = threading.Lock()


@contextlib.contextmanager
def use_panel(panel: JudgePanel) -> Iterator[JudgePanel]:
    """Make ``panel`` the one :func:`legal_qa_judges` calls (training, grading) inside the block."""
    _STACK.append(panel)
    try:
        yield panel
    finally:
        _STACK.remove(panel)


def active_panel() -> JudgePanel:
    """The panel in use; without one, a default made once: the APIs if both keys are set, else the
    offline fake judges (with a warning: nothing real is being judged)."""
    if _STACK:
        return _STACK[-1]
    with _LOCK:
        if not _DEFAULT:
            try:
                _DEFAULT.append(api_panel())
            except RuntimeError:
                log.warning("legal_qa_judges: no judge API keys, judging with the OFFLINE FAKE judges "
                            "(a heuristic, not a model). Use grpo_course.train.train('legal-qa', ...), which "
                            "chooses and prints the judges and their cost first.")
                _DEFAULT.append(offline_panel())
        return _DEFAULT[0]


def _texts(values) -> tuple | None:
    if values is None:
        return None
    try:
        return tuple(repr(v) for v in values)
    except TypeError:
        return (repr(values),)


def legal_qa_judges(completions, prompts=None, **kwargs) -> list[float | None]:
    """TRL reward: the active panel's rubric score (0..1; ``None`` when unscored). Reads ``reference``."""
    return active_panel().judged(completions, prompts=prompts, **kwargs)


legal_qa_judges.reward_range = (0.0, 1.0)


def legal_qa_format(completions, prompts=None, **kwargs) -> list[float | None]:
    """TRL reward: stage 02's ``format`` (1.0 for a think block then a non-empty answer block, else 0.0), but
    ``None`` for a completion the judges could not score (budget cap, outage). TRL drops a completion (it
    leaves the group's mean and standard deviation and gets advantage 0) only when *every* reward function
    returns ``None`` for it; a format score alone would train it as if the judges had said 0. Asks the active
    panel for the judges' verdicts on the same batch (judged once per step, :meth:`JudgePanel.judged`).
    Range [0, 1], or ``None``."""
    from .math import format_reward

    judged = active_panel().judged(completions, prompts=prompts, **kwargs)
    return [None if j is None else f for f, j in zip(format_reward(completions), judged)]


legal_qa_format.reward_range = (0.0, 1.0)


@contextlib.contextmanager
def judging(profile: Profile, judges: str = "auto", budget_usd: float | None = DEFAULT_BUDGET_USD
            ) -> Iterator[JudgePanel]:
    """The run's panel (:func:`panel_for`), active inside the block, closed after it."""
    panel = panel_for(profile, judges, budget_usd)
    try:
        with use_panel(panel):
            yield panel
    finally:
        panel.close()
