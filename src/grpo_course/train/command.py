"""``grpo-course train``: the same pipeline as the notebook, from a terminal (``make run``).

On ``cpu-tiny`` it GRPO-trains the course's tiny model for the tiny recipe's steps and prints held-out
accuracy before and after. Re-running the command resumes an interrupted run from its last checkpoint
and trains a finished one afresh (``--fresh`` always starts over). This module is light: the pipeline is
imported when the command runs.
"""

from __future__ import annotations

import argparse

from ..usage import non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="gsm8k", help="task to train on (default: gsm8k)")
    p.add_argument("--profile", default=None, help="hardware profile (default: detected; GRPO_COURSE_PROFILE)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="GRPO steps (default: the profile's or tiny recipe's)")
    p.add_argument("--reward", default=None,
                   help="reward set or name, e.g. tag or composite (default: the task's / tiny recipe's)")
    p.add_argument("--output-dir", default=None, help="run folder (default: runs/<task>-<profile>)")
    p.add_argument("--fresh", action="store_true", help="delete this run's checkpoints and start over")
    p.add_argument("--save-steps", type=positive_int, default=None, help="checkpoint every N steps (default 10)")
    p.add_argument("--eval-size", type=positive_int, default=None, help="held-out problems for before/after")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sft-priming", choices=("on", "off", "auto"), default="auto",
                   help="SFT format priming before GRPO (auto: on for GPU profiles, off for cpu-tiny)")
    p.add_argument("--save-merged", action="store_true", help="GPU: also save merged 16-bit weights")
    p.add_argument("--save-gguf", action="store_true", help="GPU: also export GGUF for llama.cpp / Ollama")
    p.add_argument("--push-to-hub", default=None, metavar="USER/REPO",
                   help="push the adapter (private) to the hub; needs HF_TOKEN")
    p.add_argument("--examples", type=non_negative_int, default=2, help="before/after examples to print")


def announce_profile(args: argparse.Namespace):
    """The runtime's profile (or ``--profile``), printed as the task will use it: a task beyond GSM8K
    brings its own model, lengths and group size."""
    from ..hardware import current_profile, describe, get_profile
    from ..tasks import get_task

    profile, reason = (get_profile(args.profile), "--profile") if args.profile else current_profile()
    task = get_task(args.task)
    if task.models or task.lengths:  # the task brings its own model or lengths
        print(describe(task.profile_for(profile), f"{reason}; task {task.name}"))
    else:
        print(describe(profile, reason))
    return profile


def run(args: argparse.Namespace) -> int:
    """Train ``args.task`` (any registered task: the pipeline routes code, medcalc and legal-qa to their
    own models and rewards)."""
    from .pipeline import train

    profile = announce_profile(args)
    priming = {"on": True, "off": False, "auto": None}[args.sft_priming]
    result = train(args.task, profile, steps=args.steps, output_dir=args.output_dir, resume=not args.fresh,
                   reward=args.reward, sft_priming=priming, eval_size=args.eval_size, save_steps=args.save_steps,
                   seed=args.seed, save_merged=args.save_merged, save_gguf=args.save_gguf,
                   push_to_hub=args.push_to_hub, live=False)
    # Under accelerate launch / torchrun: wait for every rank, then tear the process group down before the
    # interpreter exits (a failed rank raises instead, and the launcher stops the others).
    from ..distributed import finish_distributed, is_main_process

    finish_distributed()
    if not is_main_process():  # the other ranks trained the same model; one report is enough
        return 0 if result.finished else 1
    if result.comparison is not None and args.examples:
        print()
        print(result.comparison.side_by_side(n=args.examples))
    print()
    print(result.summary())
    if result.plot_path:
        print(f"training panel: {result.plot_path}")
    return 0 if result.finished else 1
