"""The evaluation loop: generate, grade, tabulate, save, with the run's full context.

:func:`evaluate_model` takes held-out problems (GSM8K's ``question``/``answer`` columns), draws a
greedy completion and ``n`` samples per problem, grades each with the **lenient** grader (the
evaluation mode of ``grpo_course.rewards.is_correct``: forgives format, never ambiguity) and the
**strict** one (what the training reward checks), runs the reward-hacking audit, and returns an
:class:`EvalResult`: a tidy table with one row per completion (``rows()``), a per-problem table
(``problem_table()``), the metrics (greedy accuracy, pass@k, maj@k, with intervals) and the context
(model, adapter, LoRA r/alpha, steps, profile, decoding, dataset, split, size, time, versions).
``save(folder)`` writes JSONL, CSV and a ``context.json``; :meth:`EvalResult.load` reads them back.

Greedy vs sampled pass@1: greedy accuracy is the model's single most likely answer (what a user gets
at temperature 0); sampled pass@1 is the mean of ``c/n`` at the sampling temperature (what GRPO's
groups see while training). They differ, and both are reported.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import metrics
from ..generation import Decoding, Generated, generate_samples, has_adapter
from ..hardware import Profile
from .audit import FLAGS, audit_completion, audit_counts, repetition_score

MODES = ("lenient", "strict")
ROW_FIELDS = ["run", "problem_id", "kind", "sample", "gold", "answer_lenient", "answer_strict", "correct_lenient",
              "correct_strict", "format_ok", "n_tokens", "n_chars", "truncated", "reasoning_steps", "repetition",
              *[f for f in FLAGS if f != "truncated"], "completion", "question"]


def grade(question: str, gold: str, gen: Generated, problem_id: str, kind: str, sample: int, run: str) -> dict:
    """One tidy row: both graders, extracted answers, format, length, audit flags."""
    from ..rewards import count_reasoning_steps, extract_answer, has_tag_format, is_correct, parse_gsm8k_gold

    text = gen.text
    correct = is_correct(text, gold, mode="lenient")
    fmt = has_tag_format(text)
    steps = count_reasoning_steps(text, question)
    flags = audit_completion(text, gold, truncated=gen.truncated, correct=correct, format_ok=fmt)
    return {
        "run": run, "problem_id": problem_id, "kind": kind, "sample": sample, "gold": parse_gsm8k_gold(gold),
        "answer_lenient": extract_answer(text, "lenient"), "answer_strict": extract_answer(text, "strict"),
        "correct_lenient": bool(correct), "correct_strict": bool(is_correct(text, gold, mode="strict")),
        "format_ok": bool(fmt), "n_tokens": gen.n_tokens, "n_chars": len(text), "truncated": bool(gen.truncated),
        "reasoning_steps": steps, "repetition": round(repetition_score(text), 4),
        **{f: flags[f] for f in FLAGS if f != "truncated"}, "completion": text, "question": question,
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "trl", "vllm", "unsloth"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def describe_model(model, adapter_path: str | Path | None = None) -> dict:
    """What a reader needs to know about the model evaluated: base id or path, adapter and its LoRA
    r/alpha, and the training step the adapter comes from (read from ``trainer_state.json``)."""
    info: dict = {}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(base, "config", None)
    name = getattr(cfg, "_name_or_path", "") or getattr(cfg, "name_or_path", "")
    info["model"] = _portable(name) if name else type(base).__name__
    info["parameters"] = sum(p.numel() for p in base.parameters()) if hasattr(base, "parameters") else None
    if has_adapter(model):
        cfg = model.peft_config.get(getattr(model, "active_adapter", "default")) or next(iter(model.peft_config.values()))
        info.update(adapter=_portable(str(adapter_path)) if adapter_path else "(in memory)",
                    lora_r=getattr(cfg, "r", None), lora_alpha=getattr(cfg, "lora_alpha", None),
                    lora_targets=sorted(getattr(cfg, "target_modules", None) or []))
    else:
        info.update(adapter=None, lora_r=None, lora_alpha=None)
    if adapter_path is not None:
        info["train_steps"] = train_steps_of(adapter_path)
    return info


def _portable(path: str) -> str:
    """A path relative to the repository when it lies inside it (no machine paths in saved results)."""
    from ..paths import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return path


def train_steps_of(path: str | Path) -> int | None:
    """The global step of a checkpoint folder (or of the run folder it sits in), if it says."""
    p = Path(path)
    for candidate in (p, p.parent, p.parent.parent):
        state = candidate / "trainer_state.json"
        if state.is_file():
            try:
                return int(json.loads(state.read_text())["global_step"])
            except (ValueError, KeyError, json.JSONDecodeError):
                return None
        result = candidate / "result.json"
        if result.is_file():
            try:
                return int(json.loads(result.read_text())["global_step"])
            except (ValueError, KeyError, json.JSONDecodeError):
                return None
    return None


@dataclass
class EvalResult:
    """Greedy and sampled completions for the same problems, graded, with the run's context."""

    name: str
    context: dict
    problems: list[dict]  # {"id", "question", "answer"}
    greedy: list[dict] | None  # one row per problem, or None when greedy decoding was skipped
    samples: list[list[dict]] = field(default_factory=list)  # n rows per problem

    modes = MODES  # the graders a grpo_course.compare.Comparison tabulates

    # ---- shape ----------------------------------------------------------------------------------
    @property
    def n_problems(self) -> int:
        return len(self.problems)

    @property
    def n_samples(self) -> int:
        return len(self.samples[0]) if self.samples else 0

    def rows(self) -> list[dict]:
        """The tidy table: one row per completion (``kind`` is ``greedy`` or ``sample``)."""
        out = list(self.greedy or [])
        for group in self.samples:
            out.extend(group)
        return out

    def _col(self, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        return f"correct_{mode}"

    # ---- per problem ----------------------------------------------------------------------------
    def correct_counts(self, mode: str = "lenient") -> list[int]:
        col = self._col(mode)
        return [sum(r[col] for r in group) for group in self.samples]

    def greedy_correct(self, mode: str = "lenient") -> list[bool]:
        if self.greedy is None:
            raise ValueError(f"{self.name}: greedy decoding was not run")
        col = self._col(mode)
        return [bool(r[col]) for r in self.greedy]

    def pass1_per_problem(self, mode: str = "lenient") -> list[float]:
        n = self.n_samples
        return [c / n for c in self.correct_counts(mode)]

    def problem_table(self) -> list[dict]:
        """One row per problem: gold, greedy answer and verdict, c of n, pass@1/pass@n, majority answer."""
        from ..rewards import parse_gsm8k_gold

        n = self.n_samples
        rows = []
        for i, p in enumerate(self.problems):
            row = {"run": self.name, "problem_id": p["id"], "gold": parse_gsm8k_gold(p["answer"])}
            if self.greedy is not None:
                g = self.greedy[i]
                row.update(greedy_answer=g["answer_lenient"], greedy_correct=g["correct_lenient"],
                           greedy_correct_strict=g["correct_strict"], greedy_format=g["format_ok"])
            if n:
                group = self.samples[i]
                c = sum(r["correct_lenient"] for r in group)
                winners = metrics.majority_vote([r["answer_lenient"] for r in group])
                row.update(n=n, c=c, c_strict=sum(r["correct_strict"] for r in group),
                           pass_at_1=c / n, **{f"pass_at_{n}": metrics.pass_at_k(n, c, n)},
                           majority_answer="|".join(map(str, winners)),
                           format_rate=sum(r["format_ok"] for r in group) / n,
                           mean_tokens=sum(r["n_tokens"] for r in group) / n)
            row["question"] = p["question"]
            rows.append(row)
        return rows

    # ---- metrics --------------------------------------------------------------------------------
    def greedy_accuracy(self, mode: str = "lenient", confidence: float = 0.95) -> metrics.Interval:
        ok = self.greedy_correct(mode)
        return metrics.wilson_interval(sum(ok), len(ok), confidence)

    def pass_at_k(self, k: int, mode: str = "lenient") -> float:
        return metrics.mean_pass_at_k(self.correct_counts(mode), k, n=self.n_samples)

    def pass1_interval(self, mode: str = "lenient", confidence: float = 0.95, seed: int = 0) -> metrics.Interval:
        """Sampled pass@1 with a bootstrap interval over problems."""
        return metrics.bootstrap_interval(self.pass1_per_problem(mode), confidence, seed=seed)

    def pass_curve(self, mode: str = "lenient") -> dict[int, float]:
        return metrics.pass_at_k_curve(self.correct_counts(mode), n=self.n_samples)

    def maj_at_k(self, k: int, mode: str = "lenient") -> float:
        col = self._col(mode)
        answer = f"answer_{mode}"
        vals = [metrics.maj_at_k([r[answer] for r in g], [r[col] for r in g], k) for g in self.samples]
        return math.fsum(vals) / len(vals)

    def rate(self, column: str, kind: str | None = None) -> float:
        rows = [r for r in self.rows() if kind is None or r["kind"] == kind]
        return sum(bool(r[column]) for r in rows) / max(1, len(rows))

    def mean_tokens(self, kind: str | None = None) -> float:
        rows = [r for r in self.rows() if kind is None or r["kind"] == kind]
        return sum(r["n_tokens"] for r in rows) / max(1, len(rows))

    def audit(self, kind: str | None = None) -> dict[str, int]:
        return audit_counts(r for r in self.rows() if kind is None or r["kind"] == kind)

    def metrics_dict(self) -> dict:
        """The headline numbers (JSON-ready)."""
        out: dict = {"run": self.name, "problems": self.n_problems, "samples_per_problem": self.n_samples}
        if self.greedy is not None:
            for mode in MODES:
                iv = self.greedy_accuracy(mode)
                out[f"greedy_{mode}"] = iv.estimate
                out[f"greedy_{mode}_ci95"] = [iv.low, iv.high]
            out["greedy_format_rate"] = self.rate("format_ok", "greedy")
        if self.n_samples:
            for mode in MODES:
                iv = self.pass1_interval(mode)
                out[f"pass@1_{mode}"] = iv.estimate
                out[f"pass@1_{mode}_ci95"] = [iv.low, iv.high]
                out[f"pass@{self.n_samples}_{mode}"] = self.pass_at_k(self.n_samples, mode)
            out[f"maj@{self.n_samples}_lenient"] = self.maj_at_k(self.n_samples)
            out["sample_format_rate"] = self.rate("format_ok", "sample")
        out["mean_tokens"] = self.mean_tokens()
        out["truncation_rate"] = self.rate("truncated")
        return out

    def summary(self) -> str:
        m = self.metrics_dict()
        lines = [f"{self.name}: {self.n_problems} problems ({self.context.get('dataset', '?')})"]
        if self.greedy is not None:
            lines.append(f"  greedy accuracy   lenient {self.greedy_accuracy('lenient')}  strict "
                         f"{self.greedy_accuracy('strict')}  (95% Wilson)")
        if self.n_samples:
            n = self.n_samples
            t = self.context.get("decoding", {}).get("temperature")
            lines.append(f"  sampled pass@1    lenient {self.pass1_interval('lenient')}  strict "
                         f"{self.pass1_interval('strict')}  (n={n} at T={t}, 95% bootstrap)")
            lines.append(f"  pass@{n} {m[f'pass@{n}_lenient']:.1%}   maj@{n} {m[f'maj@{n}_lenient']:.1%}   "
                         f"format {m['sample_format_rate']:.1%}")
        lines.append(f"  mean length {m['mean_tokens']:.1f} tokens, truncated {m['truncation_rate']:.1%}")
        return "\n".join(lines)

    # ---- files ----------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``<name>.samples.jsonl`` / ``.samples.csv`` (one row per completion),
        ``<name>.problems.csv`` (one row per problem) and ``<name>.context.json`` (context + metrics)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = _safe_name(self.name)
        paths = {"jsonl": folder / f"{stem}.samples.jsonl", "csv": folder / f"{stem}.samples.csv",
                 "problems": folder / f"{stem}.problems.csv", "context": folder / f"{stem}.context.json"}
        rows = self.rows()
        with paths["jsonl"].open("w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        _write_csv(paths["csv"], rows, ROW_FIELDS)
        table = self.problem_table()
        _write_csv(paths["problems"], table, list(table[0]) if table else [])
        paths["context"].write_text(json.dumps({"name": self.name, "context": self.context,
                                                "metrics": self.metrics_dict(),
                                                "problems": [{"id": p["id"], "question": p["question"],
                                                              "answer": p["answer"]} for p in self.problems]},
                                               indent=1, ensure_ascii=False, default=str))
        return paths

    @classmethod
    def load(cls, folder: str | Path, name: str) -> EvalResult:
        folder = Path(folder)
        stem = _safe_name(name)
        meta = json.loads((folder / f"{stem}.context.json").read_text())
        rows = [json.loads(line) for line in (folder / f"{stem}.samples.jsonl").read_text().splitlines() if line]
        index = {p["id"]: i for i, p in enumerate(meta["problems"])}
        greedy = [r for r in rows if r["kind"] == "greedy"]
        greedy.sort(key=lambda r: index[r["problem_id"]])
        samples: list[list[dict]] = [[] for _ in meta["problems"]]
        for r in rows:
            if r["kind"] == "sample":
                samples[index[r["problem_id"]]].append(r)
        for group in samples:
            group.sort(key=lambda r: r["sample"])
        return cls(meta["name"], meta["context"], meta["problems"], greedy or None,
                   samples if any(samples) else [])


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"


def _write_csv(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def default_batch_size(profile: Profile | None) -> int:
    """Completions per generate call: 1024 on CPU (the tiny model; fewer, larger calls are faster), 512
    chunks for vLLM (it batches internally; the chunk only paces the progress bar), 64 for transformers
    on a GPU (a T4's 15 GB holds the KV cache of 64 Llama-3.2-1B sequences of ~1k tokens easily)."""
    if profile is None or profile.device == "cpu":
        return 1024
    return 512 if profile.uses_vllm else 64


def evaluate_model(model, tokenizer, problems: Sequence[dict], *, name: str = "eval", n_samples: int = 8,
                   temperature: float = 1.0, greedy: bool = True, max_new_tokens: int = 256,
                   batch_size: int | None = None, seed: int = 0, profile: Profile | None = None, use_adapter: bool = True,
                   adapter_path: str | Path | None = None, dataset: str = "", split: str = "test",
                   extra_context: dict | None = None, progress: bool = True) -> EvalResult:
    """Evaluate ``model`` on ``problems``: a greedy completion (if ``greedy``) and ``n_samples`` samples
    at ``temperature`` per problem, graded lenient and strict, audited, with the context recorded.

    ``use_adapter=False`` evaluates a LoRA model with its adapter switched off (the "before" model).
    ``profile`` picks the generation backend (GPU profiles: ``grpo_course.gpu``); ``None`` = transformers.
    ``batch_size`` counts completions per ``generate`` call (prompts per call = ``batch_size // n``);
    default :func:`default_batch_size` (large on CPU, where per-step overhead dominates; small on a T4).
    """
    from ..chat_format import build_messages

    problems = [dict(p, id=str(p.get("id", i))) for i, p in enumerate(problems)]
    if not problems:
        raise ValueError("no problems to evaluate")
    if not greedy and n_samples < 1:
        raise ValueError("nothing to do: greedy=False and n_samples=0")
    prompts = [build_messages(p["question"]) for p in problems]
    batch_size = batch_size or default_batch_size(profile)
    started = time.time()
    greedy_rows = None
    decodings = {}
    if greedy:
        dec = Decoding(max_new_tokens, 0.0, 1, seed=seed, batch_size=batch_size)
        decodings["greedy"] = dec.as_dict()
        gens = generate_samples(model, tokenizer, prompts, dec, profile, use_adapter, progress, f"{name}: greedy")
        greedy_rows = [grade(p["question"], p["answer"], g[0], p["id"], "greedy", -1, name)
                       for p, g in zip(problems, gens)]
    sample_rows: list[list[dict]] = []
    if n_samples:
        dec = Decoding(max_new_tokens, temperature, n_samples, seed=seed, batch_size=max(1, batch_size // n_samples))
        decodings["sampled"] = dec.as_dict()
        gens = generate_samples(model, tokenizer, prompts, dec, profile, use_adapter, progress,
                                f"{name}: {n_samples} samples")
        sample_rows = [[grade(p["question"], p["answer"], s, p["id"], "sample", j, name) for j, s in enumerate(g)]
                       for p, g in zip(problems, gens)]
    info = describe_model(model, adapter_path)
    if not use_adapter:
        info["adapter_enabled"] = False
    elif info.get("adapter"):
        info["adapter_enabled"] = True
    context = {
        **info,
        "profile": profile.name if profile is not None else None,
        "backend": (profile.generation_backend if profile is not None and profile.device != "cpu"
                    else "transformers"),
        "decoding": {"temperature": temperature, "n_samples": n_samples, "greedy": greedy,
                     "max_new_tokens": max_new_tokens, "top_p": 1.0, "top_k": 0, "seed": seed, "runs": decodings},
        "prompt": "grpo_course.chat_format.build_messages (system prompt + question) with the model's chat template",
        "graders": {"lenient": "grpo_course.rewards.is_correct(mode='lenient')",
                    "strict": "grpo_course.rewards.is_correct(mode='strict')"},
        "dataset": dataset, "split": split, "n_problems": len(problems),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 2),
        "versions": _versions(),
        **(extra_context or {}),
    }
    return EvalResult(name, context, [{"id": p["id"], "question": p["question"], "answer": p["answer"]}
                                      for p in problems], greedy_rows, sample_rows)


def before_after(model, tokenizer, problems: Sequence[dict], **kwargs):
    """:func:`grpo_course.compare.before_after` graded by :func:`evaluate_model`: the adapter off, then on,
    with identical settings (``kwargs`` go to ``evaluate_model`` for both runs); a ``Comparison``."""
    from ..compare import before_after as compare_runs

    return compare_runs(model, tokenizer, problems, evaluate_model, **kwargs)
