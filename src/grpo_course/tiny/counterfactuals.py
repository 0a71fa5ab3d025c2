"""The seeds' claims as experiments on the tiny model: change one thing, run GRPO, read the verdict.

Each experiment is the tiny lab (:func:`~grpo_course.tiny.lab.run_lab`: TRL's ``GRPOTrainer``, the course's
rewards, the recipe :data:`~grpo_course.tiny.recipe.TINY_GRPO`) with one setting or the starting model
changed (:data:`EXPERIMENTS`). Notebook 09 runs them with short settings; ``benchmarks/counterfactuals.py``
runs them on 3 seeds and prints the table. Every verdict sentence here is built from a run's numbers.

- ``default``: the recipe as it is. GRPO turns pass@8 into pass@1 (*sharpening*).
- ``flaw_always``: the same GRPO from an SFT model whose demonstrator *always* added instead of
  subtracting (flaw rate 1.0, ``data/tiny/sft_always_adds``): it (almost) never samples a ``-``, so every
  subtraction group scores the same and GRPO has nothing to amplify there.
- ``low_diversity``: the seeds' failed ablation (the tutor example: G = 4 with greedy decoding stalled).
  G = 4 at temperature 0.05, nearly greedy: almost every group's completions are identical.
- ``restored``: raising G and the temperature, as the seeds' fix says: G = 12 at temperature 0.9 (the
  tutor's own G and temperature).
- ``no_kl``, ``kl`` and ``strong_kl``: beta = 0, 0.04 (DeepSeekMath's value) and 0.4, each with
  ``num_iterations=2`` (each batch is used for two optimiser steps, so the second sees a ratio away from 1 and
  clipping can act) and 10 times the recipe's learning rate (1.5e-3): at the recipe's rate the policy moves about
  0.01 nats per token from the SFT model in 20 steps and clips almost nothing, so there is nothing for a leash to
  hold. The KL to the SFT model is measured exactly (a sum over the vocabulary) on the policy's own samples by
  :class:`KLProbe`, for every run alike; TRL logs its k3 estimate only when beta > 0. ``no_kl_recipe_lr`` and
  ``kl_recipe_lr`` are the pair at the recipe's own learning rate, for that comparison.

Every experiment keeps 8 prompts per step (``per_device_train_batch_size = 8 * G``), so a run with a larger
G sees the same prompts and only samples more answers to each.

Helpers: :func:`operator_probabilities` (the probability of ``-`` where a subtraction step writes its
operator), :func:`pass_curves` (pass@k before and after), :func:`sharpening_sentence`,
:func:`flaw_sentence`, :func:`diversity_sentence`, :func:`kl_sentence`, :func:`entropy_sentence`.
Importing this module does not import torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..chat_format import build_messages, prompt_token_ids
from ..metrics import pass_at_k_curve
from .demonstrator import reasoning_lines
from .evaluation import ProblemScores, prompt_texts
from .problems import run_program, subtracts
from .recipe import TINY_GRPO

ALWAYS_ADDS = "sft_always_adds"  # the starting model of ``flaw_always`` (see grpo_course.tiny.build.VARIANTS)


@dataclass(frozen=True)
class Experiment:
    name: str
    what: str  # one line for a table
    model: str = "sft"  # a committed tiny model kind (grpo_course.tiny.KINDS)
    overrides: dict = field(default_factory=dict)  # GRPOConfig settings changed from TINY_GRPO


def _group(G: int, temperature: float, **more) -> dict:
    return {"num_generations": G, "per_device_train_batch_size": 8 * G, "temperature": temperature, **more}


def _drift(beta: float) -> dict:
    return {"beta": beta, "num_iterations": 2, "learning_rate": 10 * TINY_GRPO["learning_rate"]}


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("default", "the recipe: G = 8, temperature 1.0"),
    Experiment("flaw_always", "start from the SFT model whose demonstrator always adds", model=ALWAYS_ADDS),
    Experiment("low_diversity", "G = 4, temperature 0.05 (nearly greedy)", overrides=_group(4, 0.05)),
    Experiment("restored", "G = 12, temperature 0.9", overrides=_group(12, 0.9)),
    Experiment("no_kl", "beta = 0, num_iterations = 2, learning rate x10", overrides=_drift(0.0)),
    Experiment("kl", "beta = 0.04, num_iterations = 2, learning rate x10", overrides=_drift(0.04)),
    Experiment("strong_kl", "beta = 0.4, num_iterations = 2, learning rate x10", overrides=_drift(0.4)),
    Experiment("no_kl_recipe_lr", "beta = 0, num_iterations = 2", overrides={"beta": 0.0, "num_iterations": 2}),
    Experiment("kl_recipe_lr", "beta = 0.04, num_iterations = 2", overrides={"beta": 0.04, "num_iterations": 2}),
)}
KL_RUNS = ("no_kl", "kl", "strong_kl")


EQUAL = 1e-6  # rewards within this of each other count as equal


class GroupRecorder:
    """Wraps the reward functions given to TRL and keeps every generation batch's summed rewards, so a run can say
    which groups had equal rewards, by problem type.

    Why not TRL's ``frac_reward_zero_std``: TRL 1.14 tests ``torch.isclose(std, 0)`` (tolerance 1e-8) on float32
    rewards, and eight copies of a reward like 0.9 (= 0.2 + 0.2 + 0.5 here) have a float32 std of 6.4e-8, so such
    groups are logged as having variance. Their advantages are about 6e-4 instead of 0: no signal either way."""

    def __init__(self, funcs: list, G: int):
        self.funcs, self.G = funcs, G
        self.calls: list[list[list[float]]] = [[] for _ in funcs]  # per function, per batch: the rewards
        self.subtraction: list[list[bool]] = []  # per batch: has_subtraction of each completion

    def wrapped(self) -> list:
        out = []
        for i, f in enumerate(self.funcs):
            def reward(completions, _i=i, _f=f, **kwargs):
                scores = _f(completions, **kwargs)
                self.calls[_i].append([0.0 if x is None else float(x) for x in scores])
                if _i == 0:
                    self.subtraction.append([bool(x) for x in kwargs.get("has_subtraction") or [False] * len(scores)])
                return scores
            reward.__name__ = getattr(f, "__name__", f"reward_{i}")
            out.append(reward)
        return out

    def equal_share(self, kind: str = "all") -> list[float]:
        """Per generation batch: the share of groups (``kind``: all, subtraction or other) whose rewards are equal."""
        shares = []
        for b in range(min(len(c) for c in self.calls)):
            totals = [sum(vals) for vals in zip(*(c[b] for c in self.calls))]
            groups = [(totals[j:j + self.G], self.subtraction[b][j]) for j in range(0, len(totals), self.G)]
            keep = [g for g, sub in groups if kind == "all" or sub == (kind == "subtraction")]
            shares.append(sum(max(g) - min(g) <= EQUAL for g in keep) / len(keep) if keep else math.nan)
        return shares


def run_experiment(name: str, seed: int = 0, *, steps: int | None = None, n_test: int | None = None, k: int = 8,
                   curve_every: int = 5, kl_probe_every: int = 0, threads: int | None = 1,
                   progress: bool = False):
    """One experiment (a :class:`~grpo_course.tiny.lab.LabResult`, with ``result.experiment`` and ``result.groups``,
    the :class:`GroupRecorder` of its rewards).

    ``kl_probe_every``: measure the exact KL to the starting model every that many steps (``result.kl_curve``,
    a list of ``{"step", "kl"}``); 0 for no probe. The probe's time is left out of ``grpo_seconds``."""
    from . import load_tiny, tiny_dir
    from .lab import run_lab

    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    e = EXPERIMENTS[name]
    probe = None
    if kl_probe_every:
        reference, tokenizer = load_tiny(e.model)
        probe = KLProbe(reference, tokenizer, every=kl_probe_every)
    from .lab import reward_functions

    G = e.overrides.get("num_generations", TINY_GRPO["num_generations"])
    recorder = GroupRecorder(reward_functions(), G)
    result = run_lab(seed=seed, steps=steps, model_dir=tiny_dir(e.model), n_test=n_test, k=k, curve_every=curve_every,
                     overrides=dict(e.overrides), reward_funcs=recorder.wrapped(),
                     callbacks=[probe.callback()] if probe else None, threads=threads, progress=progress)
    result.experiment, result.groups = e, recorder
    result.kl_curve = probe.curve if probe else []
    if probe:
        result.grpo_seconds -= probe.seconds
    return result


# ---- the KL to the starting model, measured exactly -----------------------------------------------------

def exact_kl(policy, reference, ids, mask, P: int) -> float:
    """Mean over completion tokens of KL(policy || reference) of the next-token distributions (a sum over
    the whole vocabulary at each position, not an estimate from the sampled token)."""
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(policy(input_ids=ids, attention_mask=mask).logits[:, P - 1:-1], -1)
        logq = torch.log_softmax(reference(input_ids=ids, attention_mask=mask).logits[:, P - 1:-1], -1)
        per_token = (logp.exp() * (logp - logq)).sum(-1)
        cmask = mask[:, P:].float()
        return ((per_token * cmask).sum() / cmask.sum()).item()


class KLProbe:
    """Every ``every`` steps, sample one completion for each of ``n_prompts`` held-out questions from the
    policy (temperature 1) and record :func:`exact_kl` to ``reference`` in ``curve``. Give the trainer
    :meth:`callback`."""

    def __init__(self, reference, tokenizer, every: int = 1, n_prompts: int = 32, seed: int = 0):
        from .problems import load_split

        self.reference, self.tokenizer, self.every, self.seed = reference, tokenizer, every, seed
        questions = [p["question"] for p in load_split("test")[-n_prompts:]]  # not the curve's problems
        self.prompts = [prompt_token_ids(tokenizer, build_messages(q)) for q in questions]
        self.curve: list[dict] = []
        self.seconds = 0.0

    def measure(self, model, step: int) -> float:
        import torch

        from ..scratch import sample_groups

        start = time.perf_counter()
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed + step)
        was_training = model.training
        model.eval()
        try:
            ids, mask, P = sample_groups(model, self.prompts, 1, 40, 1.0, self.tokenizer.pad_token_id,
                                         self.tokenizer.eos_token_id)
            kl = exact_kl(model, self.reference, ids, mask, P)
        finally:
            model.train(was_training)
            torch.random.set_rng_state(state)  # the probe leaves training's random stream as it was
        self.curve.append({"step": step, "kl": kl})
        self.seconds += time.perf_counter() - start
        return kl

    def callback(self):
        """A ``transformers.TrainerCallback`` that measures at the start and every ``every`` steps."""
        from transformers import TrainerCallback

        probe = self

        class KLProbeCallback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                probe.measure(model, 0)

            def on_step_end(self, args, state, control, model=None, **kwargs):
                if probe.every and state.global_step % probe.every == 0:
                    probe.measure(model, state.global_step)

        return KLProbeCallback()


# ---- sharpening, made visible ---------------------------------------------------------------------------

def decisive_prefix(problem: dict) -> str | None:
    """The correct completion up to the operator of the first subtraction step (``None`` without one):
    the next token is ``" -"`` if the model subtracts and ``" +"`` if it copies the demonstrator's flaw."""
    from ..chat_format import REASONING_START

    rows = run_program(problem["program"])
    first = next((i for i, (_, op, _, _) in enumerate(rows) if op == "-"), None)
    if first is None:
        return None
    lines = reasoning_lines(rows[:first])
    return REASONING_START + "\n" + "".join(line + "\n" for line in lines) + str(rows[first][0])


def operator_probabilities(model, tokenizer, problems: Sequence[dict]) -> list[dict]:
    """For each problem with a subtraction step: the model's probabilities of ``" -"`` and ``" +"`` as the
    next token after :func:`decisive_prefix` (temperature 1), and the entropy of that whole distribution."""
    import torch

    rows = [(p, decisive_prefix(p)) for p in problems if subtracts(p)]
    rows = [(p, prefix) for p, prefix in rows if prefix is not None]
    if not rows:
        return []
    texts = [t + prefix for t, (_, prefix) in zip(prompt_texts(tokenizer, [p["question"] for p, _ in rows]), rows)]
    minus, plus = tokenizer.convert_tokens_to_ids([" -", " +"])
    batch = tokenizer(texts, return_tensors="pt", padding=True)  # left-padded: the last column is the next token
    with torch.no_grad():
        logp = torch.log_softmax(model(**batch).logits[:, -1], -1)
    entropy = -(logp.exp() * logp).sum(-1)
    return [{"question": p["question"], "p_minus": logp[i, minus].exp().item(), "p_plus": logp[i, plus].exp().item(),
             "entropy": entropy[i].item()} for i, (p, _) in enumerate(rows)]


def pass_curves(before: ProblemScores, after: ProblemScores, problems: Sequence[dict] | None = None,
                group: str = "all") -> dict[str, dict[int, float]]:
    """``{"before": {k: pass@k}, "after": {...}}`` for k = 1 .. samples per problem, on ``group``
    (``"all"``, ``"subtraction"`` or ``"other"``; the last two need ``problems``)."""
    keep = range(len(before.counts))
    if group != "all":
        if problems is None:
            raise ValueError("pass curves for a group need the problems")
        keep = [i for i, p in enumerate(problems) if subtracts(p) == (group == "subtraction")]
    return {when: pass_at_k_curve([s.counts[i] for i in keep], n=s.k) for when, s in (("before", before),
                                                                                     ("after", after))}


def sharpening_sentence(curves: dict[str, dict[int, float]], before_probs: list[dict],
                        after_probs: list[dict], greedy_after: float | None = None) -> str:
    """Pass@1 (and greedy accuracy) after against pass@k before, pass@k at the largest k, and P(-) at the
    decisive position."""
    b, a = curves["before"], curves["after"]
    top = max(b)

    def reached(value):
        return max((k for k in b if b[k] <= value + 1e-9), default=None)

    k1 = reached(a[1])
    lift = (f"GRPO lifted sampled pass@1 from {b[1]:.1%} to {a[1]:.1%}, the old pass@{k1} ({b[k1]:.1%})" if k1 else
            f"GRPO moved sampled pass@1 from {b[1]:.1%} to {a[1]:.1%}, below even the old pass@1")
    if greedy_after is not None and reached(greedy_after):
        kg = reached(greedy_after)
        lift += f", and greedy accuracy to {greedy_after:.1%}, the old pass@{kg} ({b[kg]:.1%})"
    top_move = a[top] - b[top]
    top_text = (f"pass@{top} moved {top_move * 100:+.1f} points ({b[top]:.1%} -> {a[top]:.1%}), so at large k "
                + ("GRPO found nothing the model could not already sample" if top_move < 0.03 else
                   "it also raised what the model can reach"))
    p_before = mean([r["p_minus"] for r in before_probs])
    p_after = mean([r["p_minus"] for r in after_probs])
    return (f"{lift}; {top_text}. The mean probability of '-' where a subtraction step writes its operator went "
            f"from {p_before:.1%} to {p_after:.1%} on {len(before_probs)} held-out problems.")


# ---- the other verdicts, each from its runs -------------------------------------------------------------

def mean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def zero_std_share(result, kind: str = "all") -> float:
    """The share of groups with equal rewards over the run (``kind``: all, subtraction or other), from the recorded
    rewards (:class:`GroupRecorder`); TRL's logged ``frac_reward_zero_std`` when nothing was recorded."""
    groups = getattr(result, "groups", None)
    if groups is not None:
        return mean(groups.equal_share(kind))
    if kind != "all":
        raise ValueError("the share by problem type needs the recorded rewards (run_experiment)")
    return mean([h["frac_reward_zero_std"] for h in result.history])


def gain_points(result) -> float:
    """Held-out greedy accuracy after minus before, in points."""
    return 100 * (result.grpo["greedy"] - result.sft["greedy"])


NO_GAIN_POINTS = 5  # a gain at or below this (in points) counts as "no learning" in the sentences below


def flaw_sentence(result) -> str:
    """What GRPO did from the always-adds model, from its run."""
    sub_before, sub_after = result.sft["greedy_subtraction"], result.grpo["greedy_subtraction"]
    reach = result.sft.get(f"pass@{result.before_scores.k}", math.nan) if result.before_scores.k else math.nan
    sub_reach = (result.sharpening.pass_at(result.before_scores.k, "before", "subtraction")
                 if getattr(result, "sharpening", None) else math.nan)
    gain = gain_points(result)
    head = ("RL cannot find what it never samples" if gain <= NO_GAIN_POINTS
            else "GRPO still learned here, so the model did sample the right operation sometimes")
    groups = ""
    if getattr(result, "groups", None) is not None:
        groups = (f" During training {zero_std_share(result, 'subtraction'):.0%} of the groups of subtraction problems "
                  f"had equal rewards (and {zero_std_share(result, 'other'):.0%} of the others).")
    return (f"{head}: starting from the model that always adds, held-out greedy accuracy moved {gain:+.1f} points "
            f"({result.sft['greedy']:.1%} -> {result.grpo['greedy']:.1%}); on subtraction problems "
            f"{sub_before:.1%} -> {sub_after:.1%}, where {result.before_scores.k} samples before training held a "
            f"right answer for {sub_reach:.1%} of them (pass@{result.before_scores.k} on all problems {reach:.1%})."
            + groups)


def diversity_sentence(low, restored) -> str:
    """The failed ablation against its fix, from the two runs."""
    def describe(r):
        o = r.experiment.overrides
        return (f"G = {o['num_generations']} at temperature {o['temperature']}: {zero_std_share(r):.0%} of groups "
                f"had equal rewards on average, held-out greedy accuracy {gain_points(r):+.1f} points")

    stalled = gain_points(low) <= NO_GAIN_POINTS
    return (("Starved of variance, GRPO stalled" if stalled else "Low diversity did not stall GRPO here")
            + f" ({describe(low)}); raising G and the temperature "
            + ("restored learning" if gain_points(restored) > NO_GAIN_POINTS else "did not restore learning")
            + f" ({describe(restored)}).")


def final_kl(result) -> float:
    """The last KL probe's value (nats per token), NaN without a probe."""
    return result.kl_curve[-1]["kl"] if getattr(result, "kl_curve", None) else math.nan


def clipped_share(result) -> float:
    """The mean of TRL's ``clip_ratio/region_mean`` over the steps that reuse a batch (the first pass over a batch
    has ratio 1 and clips nothing)."""
    reuse = [h["clip_ratio/region_mean"] for h in result.step_log if "reward" not in h and "clip_ratio/region_mean" in h]
    return mean(reuse)


def kl_sentence(runs: dict) -> str:
    """The KL runs (``{"no_kl": r, "kl": r, "strong_kl": r}``, any subset with ``no_kl``), from their probes."""
    base = runs["no_kl"]
    parts = []
    for name in ("kl", "strong_kl"):
        if name not in runs:
            continue
        r = runs[name]
        change = final_kl(r) / final_kl(base) - 1
        held = ("held the policy closer" if change <= -0.2 else
                "made no measurable difference" if abs(change) < 0.2 else "did not hold it closer")
        parts.append(f"beta = {r.experiment.overrides['beta']:g} {held} (KL {final_kl(r):.3f}, {change:+.0%}; held-out "
                     f"greedy accuracy {r.grpo['greedy']:.1%})")
    clip = mean([clipped_share(r) for r in runs.values()])
    return (f"With each batch used twice at 10x the recipe's learning rate, {clip:.1%} of the tokens of a reused batch "
            f"were clipped on average, and with beta = 0 the policy ended {final_kl(base):.3f} nats per token from the SFT "
            f"model (held-out greedy accuracy {base.sft['greedy']:.1%} -> {base.grpo['greedy']:.1%}). Against that, "
            + "; ".join(parts) + ".")


def entropy_sentence(result, before_probs: list[dict], after_probs: list[dict]) -> str:
    """The policy's entropy as it sharpens: TRL's per-step token entropy and the decisive position's, with the
    word for the change chosen from the numbers."""
    ent = [h["entropy"] for h in result.history if "entropy" in h]
    first, last = (mean(ent[:2]), mean(ent[-2:])) if ent else (math.nan, math.nan)
    e_before = mean([r["entropy"] for r in before_probs])
    e_after = mean([r["entropy"] for r in after_probs])
    drop = 1 - e_after / e_before
    word = ("collapsed" if drop >= 0.8 else "fell" if drop >= 0.1 else "rose" if drop <= -0.1 else "barely moved")
    p_after = mean([r["p_minus"] for r in after_probs])
    flipped = sum(r["p_minus"] > r["p_plus"] for r in after_probs)
    return (f"The mean entropy of the sampled tokens went from {first:.3f} to {last:.3f} nats (first and last two "
            f"steps; most tokens, copied numbers and the format, are near-certain from the start). At the decisive "
            f"operator position it {word}: {e_before:.3f} -> {e_after:.3f} nats ({-drop:+.0%}). After GRPO '-' is the "
            f"likelier operator on {flipped} of {len(after_probs)} subtraction problems, so greedy decoding subtracts, "
            f"while a sample still writes something else {1 - p_after:.0%} of the time.")


# ---- GRPO from scratch on the tiny task, with the recipe's settings ----------------------------------------

def scratch_settings(**overrides) -> dict:
    """:func:`grpo_course.scratch.grpo_from_scratch` keywords equal to the tiny recipe's TRL settings."""
    from .recipe import TINY_GRPO

    g = TINY_GRPO
    return {"steps": g["max_steps"], "G": g["num_generations"],
            "prompts_per_step": g["per_device_train_batch_size"] // g["num_generations"],
            "temperature": g["temperature"], "lr": g["learning_rate"], "epsilon": 0.2, "beta": g["beta"],
            "max_new_tokens": g["max_completion_length"], "max_grad_norm": g["max_grad_norm"], **overrides}


def run_scratch(seed: int = 0, steps: int | None = None, *, n_test: int | None = None, model: str = "sft",
                threads: int | None = 1, on_step=None) -> dict:
    """GRPO from scratch on the tiny task: the committed ``model``, the train split, the course's rewards summed
    (as TRL sums them), the recipe's settings. Returns held-out greedy accuracy ``before`` and ``after``
    (with ``split_before``/``split_after``: subtraction and other), ``seconds`` of training, the ``log``, and
    the trained ``model`` and ``tokenizer``."""
    import torch

    from ..scratch import grpo_from_scratch
    from . import load_tiny
    from .evaluation import score_problems, summarize
    from .lab import reward_functions
    from .problems import load_split

    if threads:
        torch.set_num_threads(threads)
    policy, tokenizer = load_tiny(model)
    train, test = load_split("train"), load_split("test", n_test)
    messages = [build_messages(p["question"]) for p in train]
    prompts = [prompt_token_ids(tokenizer, m) for m in messages]
    funcs = reward_functions()

    def reward(completions, **kwargs):  # TRL adds the reward functions' scores
        return [sum(s) for s in zip(*(f(completions, **kwargs) for f in funcs))]

    before = summarize(test, score_problems(policy, tokenizer, test, k=0))
    settings = scratch_settings(**({"steps": steps} if steps else {}))
    start = time.perf_counter()
    log = grpo_from_scratch(policy, tokenizer, prompts, reward, {"answer": [p["answer"] for p in train],
                                                                 "prompts": messages},
                            seed=seed, on_step=on_step, **settings)
    seconds = time.perf_counter() - start
    after = summarize(test, score_problems(policy, tokenizer, test, k=0))
    return {"seed": seed, "before": before["greedy"], "after": after["greedy"], "split_before": before,
            "split_after": after, "seconds": seconds, "log": log, "settings": settings, "model": policy,
            "tokenizer": tokenizer}
