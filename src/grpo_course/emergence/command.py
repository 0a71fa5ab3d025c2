"""The ``grpo-course build-emergence`` and ``grpo-course emergence-lab`` subcommands (``cli.py`` wires them in)."""

from __future__ import annotations

import argparse
import json


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse turns the error into one ``error:`` line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: the repository's data/emergence)")
    p.add_argument("--quick", action="store_true", help="a shortened build for tests (does not learn the task)")
    p.add_argument("--pretrain-steps", type=positive_int, default=None, help="override the worked-solutions SFT steps")
    p.add_argument("--finetune-steps", type=positive_int, default=None, help="override the mostly-bare SFT steps")


def run_build(args: argparse.Namespace) -> int:
    from .build import QUICK, EmergenceBuildSettings, build_emergence, with_steps

    settings = with_steps(QUICK if args.quick else EmergenceBuildSettings(), args.pretrain_steps,
                          args.finetune_steps)
    record = build_emergence(args.out, settings)
    print(json.dumps({k: v for k, v in record.items() if k != "sha256"}, indent=2, sort_keys=True))
    return 0


def add_lab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=positive_int, default=None, help="GRPO steps (default: EMERGENCE_GRPO's max_steps)")
    p.add_argument("--reward", default="answer", choices=["answer", "coin"],
                   help="answer: the answer's correctness only; coin: the random control")
    p.add_argument("--model-dir", default=None, help="start from this model instead of data/emergence/sft")
    p.add_argument("--plot", default=None, help="save the R1-style figure as this PNG")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)")


def run_lab_command(args: argparse.Namespace) -> int:
    from .lab import run_emergence

    result = run_emergence(seed=args.seed, steps=args.steps, reward=args.reward, model_dir=args.model_dir,
                           threads=args.threads)
    print(result.summary())
    if args.plot:
        from .plots import plot_emergence

        plot_emergence([result], path=args.plot)
        print(f"figure: {args.plot}")
    return 0
