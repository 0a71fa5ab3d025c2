"""``grpo-course train --task T`` and ``grpo-course eval --task T`` for the tasks beyond GSM8K.

``cli.py`` sends every task except ``gsm8k`` here (GSM8K keeps the stage-04 and stage-05 commands).
Training prints the task, its model, its weighted rewards (and for ``legal-qa`` the judges and the
planned cost per step) before the pipeline starts; evaluation prints the task's metric before (adapter
off) and after (adapter on). The arguments are the train and eval commands' own.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def _profile(args):
    """The runtime's profile; prints it as this task will use it (its model, lengths, group size)."""
    from ..hardware import current_profile, describe, get_profile
    from ..train.tasks import get_task
    from .base import CourseTask

    profile, reason = (get_profile(args.profile), "--profile") if args.profile else current_profile()
    task = get_task(args.task)
    shown = task.profile_for(profile) if isinstance(task, CourseTask) else profile
    print(describe(shown, f"{reason}; task {task.name}"))
    return profile


def run_train(args: argparse.Namespace) -> int:
    from .runner import train

    profile = _profile(args)
    priming = {"on": True, "off": False, "auto": None}[getattr(args, "sft_priming", "auto")]
    result = train(args.task, profile, steps=args.steps, reward=args.reward, output_dir=args.output_dir,
                   resume=not args.fresh, sft_priming=priming, eval_size=args.eval_size, save_steps=args.save_steps,
                   seed=args.seed, save_merged=args.save_merged, save_gguf=args.save_gguf,
                   push_to_hub=args.push_to_hub, live=False)
    if result.comparison is not None and args.examples:
        print()
        print(result.comparison.side_by_side(n=args.examples))
    print()
    print(result.summary())
    if result.plot_path:
        print(f"training panel: {result.plot_path}")
    return 0 if result.finished else 1


def run_eval(args: argparse.Namespace) -> int:
    from ..paths import runs_dir
    from .runner import evaluate_task

    profile = _profile(args)
    ignored = [f"--{k.replace('_', '-')}" for k in ("data", "checkpoints", "interpolate", "model")
               if getattr(args, k, None)]
    if ignored:
        print(f"note: {', '.join(ignored)} apply to GSM8K only; task {args.task} uses its own held-out data and model")
    adapter = Path(args.adapter) if args.adapter else "auto"
    if isinstance(adapter, Path) and not (adapter / "adapter_config.json").is_file():
        print(f"error: {adapter} holds no LoRA adapter (adapter_config.json)")
        return 2
    n = max(1, args.n)
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
    out = Path(args.out) if args.out else runs_dir() / "eval" / f"{args.task}-{datetime.now():%Y%m%d-%H%M%S}"
    path = result.save(out / "task_eval.json")
    print(f"saved {path}")
    return 0
