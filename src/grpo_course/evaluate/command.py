"""``grpo-course eval``: evaluate a model (and its LoRA adapter) on held-out problems from a terminal.

With an adapter it prints before (adapter off) vs after (adapter on) on the same problems with the same
template: greedy accuracy and sampled pass@1 with paired 95% intervals, pass@n, McNemar's test, and the
reward-hacking audit; it saves the tidy tables (JSONL/CSV) and the run's context. ``--checkpoints RUN``
also evaluates every checkpoint of a training run and picks one by held-out pass@1.

On ``cpu-tiny`` the defaults evaluate the course's tiny model and, if ``grpo-course train`` has run,
its adapter (``runs/gsm8k-cpu-tiny/final/adapter``) on the tiny held-out problems.
This module is light: torch and transformers load when the command runs.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from ..usage import UsageError, check_writable, non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="hardware profile (default: detected; GRPO_COURSE_PROFILE)")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the profile's model)")
    p.add_argument("--adapter", default=None,
                   help="LoRA adapter folder; compares adapter off vs on (default on cpu-tiny: the adapter "
                        "`grpo-course train` saved, if any)")
    p.add_argument("--checkpoints", default=None, metavar="RUN_DIR",
                   help="also evaluate every checkpoint-<step> in RUN_DIR and pick by held-out pass@1")
    p.add_argument("--interpolate", type=float, action="append", default=[], metavar="W",
                   help="with --checkpoints: also evaluate the best adapter scaled by W (W x RL + (1-W) x start)")
    p.add_argument("--data", default=None,
                   help="tiny | gsm8k (hub) | a JSONL file with GSM8K's question/answer columns "
                        "(default: tiny on CPU, gsm8k on GPU)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="first N problems (default: 200 on CPU, all on GPU)")
    p.add_argument("--n", type=non_negative_int, default=8, help="samples per problem for pass@k (0: greedy only)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for the n samples")
    p.add_argument("--no-greedy", action="store_true", help="skip the greedy completion")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="default: the profile's completion length")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="completions per generate call (default: 1024 on CPU, 64 on a T4, 512 with vLLM)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the tables (default: runs/eval/<time>)")
    p.add_argument("--examples", type=non_negative_int, default=1, help="audit examples to print per flag")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--task", default="gsm8k", help="task to evaluate: gsm8k, code, medcalc, legal-qa")


def default_adapter(profile) -> Path | None:
    from ..checkpoint import run_dir

    path = run_dir("gsm8k", profile.name) / "final" / "adapter"
    return path if (path / "adapter_config.json").is_file() else None


def run_math(args: argparse.Namespace) -> int:
    from ..hardware import current_profile, get_profile
    from ..paths import runs_dir
    from .audit import FLAGS, audit_examples, audit_table
    from .checkpoints import load_for_eval
    from .data import load_problems
    from .runner import before_after, evaluate_model

    profile, reason = (get_profile(args.profile), "--profile") if args.profile else current_profile()
    cpu = profile.device == "cpu"
    adapter = Path(args.adapter) if args.adapter else (default_adapter(profile) if cpu and not args.model else None)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise UsageError(f"{adapter} holds no LoRA adapter (adapter_config.json)")
    source = args.data or ("tiny" if cpu else "gsm8k")
    limit = args.limit if args.limit is not None else (200 if cpu else None)
    try:
        problems, description = load_problems(source, args.split, limit)
    except (ValueError, FileNotFoundError) as err:  # no rows, rows without GSM8K's columns, no such file
        raise UsageError(f"cannot evaluate: {err}") from None
    max_new = args.max_new_tokens or profile.max_completion_length
    out = Path(args.out) if args.out else runs_dir() / "eval" / datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.checkpoints:
        from .checkpoints import list_checkpoints

        if not list_checkpoints(args.checkpoints):
            raise UsageError(f"no complete checkpoints in {args.checkpoints}")
    check_writable(out)  # before the model loads, not after the evaluation ran
    print(f"profile {profile.name} ({reason}); data: {description}, {len(problems)} problems")

    model, tokenizer = load_for_eval(profile, args.model, adapter)
    kwargs = dict(n_samples=args.n, temperature=args.temperature, greedy=not args.no_greedy,
                  max_new_tokens=max_new, batch_size=args.batch_size, seed=args.seed, profile=profile,
                  dataset=description, split=args.split, progress=not args.no_progress)
    saved = []
    if adapter is not None:
        comparison = before_after(model, tokenizer, problems, adapter_path=adapter, **kwargs)
        results = [comparison.before, comparison.after]
        for r in results:
            print(r.summary())
        print()
        print(comparison.summary())
        print()
        print("before/after difference (after - before, 95% paired interval):")
        print(comparison.headline())
    else:
        if cpu and not args.model:
            print("no adapter found (run `grpo-course train` first, or pass --adapter): evaluating the model alone")
        results = [evaluate_model(model, tokenizer, problems, name="model", **kwargs)]
        print(results[0].summary())
    print()
    print("reward-hacking audit (all completions):")
    print(audit_table({r.name: r.rows() for r in results}))
    if args.examples:
        for flag in FLAGS:
            text = audit_examples(results[-1].rows(), flag, limit=args.examples)
            if not text.endswith("none"):
                print(text)
    for r in results:
        saved.extend(r.save(out).values())

    if args.checkpoints:
        from .checkpoints import evaluate_checkpoints, list_checkpoints

        found = list_checkpoints(args.checkpoints)
        if not hasattr(model, "peft_config"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(found[-1][1]))
        selection = evaluate_checkpoints(model, tokenizer, args.checkpoints, problems,
                                         interpolate=args.interpolate, **kwargs)
        print()
        print(selection.table())
        plot = out / "checkpoints.png"
        selection.plot(plot)
        saved.append(plot)
        for s in [*selection.scores, *selection.interpolations]:
            saved.extend(s.result.save(out / "checkpoints").values())
    print()
    print(f"saved {len(saved)} files under {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """``grpo-course eval``: GSM8K (a task with ``math_answers``) gets stage 05's math evaluation, every
    other task its own metric (pass@k, tolerance accuracy, judges)."""
    from ..tasks import get_task

    if get_task(getattr(args, "task", "gsm8k")).math_answers:
        return run_math(args)
    return run_task(args)


def run_task(args: argparse.Namespace) -> int:
    """``grpo-course eval --task T`` for a task graded by its own metric: before (adapter off) and after."""
    from ..hardware import current_profile, describe, get_profile
    from ..paths import runs_dir
    from ..tasks import get_task
    from .task_score import evaluate_task

    profile, reason = (get_profile(args.profile), "--profile") if args.profile else current_profile()
    print(describe(get_task(args.task).profile_for(profile), f"{reason}; task {args.task}"))
    ignored = [f"--{k.replace('_', '-')}" for k in ("data", "checkpoints", "interpolate", "model")
               if getattr(args, k, None)]
    if ignored:
        print(f"note: {', '.join(ignored)} apply to GSM8K only; task {args.task} uses its own held-out data and model")
    adapter = Path(args.adapter) if args.adapter else "auto"
    if isinstance(adapter, Path) and not (adapter / "adapter_config.json").is_file():
        raise UsageError(f"{adapter} holds no LoRA adapter (adapter_config.json)")
    n = max(1, args.n)
    out = Path(args.out) if args.out else runs_dir() / "eval" / f"{args.task}-{datetime.now():%Y%m%d-%H%M%S}"
    check_writable(out)  # before the model loads, not after the evaluation ran
    result = evaluate_task(args.task, profile, adapter=adapter, n=n, temperature=args.temperature,
                           limit=args.limit, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           progress=not args.no_progress, model=None)
    if "model" in result.results:
        print("no adapter found (run `grpo-course train --task " f"{args.task}` first, or pass --adapter): "
              "evaluating the model alone")
    print(result.summary())
    for label in result.completions:
        if args.examples:
            print(result.example(label))
    path = result.save(out / "task_eval.json")
    print(f"saved {path}")
    return 0
