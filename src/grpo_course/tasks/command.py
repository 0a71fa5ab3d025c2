"""``grpo-course eval --task T`` for the tasks beyond GSM8K.

``cli.py`` sends every eval of a task except ``gsm8k`` here (GSM8K keeps the stage-05 command); it
prints the task's metric before (adapter off) and after (adapter on). ``grpo-course train --task T``
needs nothing here: the stage-04 pipeline routes every task through :func:`.runner.train`.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def run_eval(args: argparse.Namespace) -> int:
    from ..paths import runs_dir
    from ..train.command import announce_profile
    from .runner import evaluate_task

    profile = announce_profile(args)
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
