"""The ``grpo-course build-tiny`` and ``grpo-course tiny-lab`` subcommands (``cli.py`` wires them in)."""

from __future__ import annotations

import argparse
import json


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: the repository's data/tiny)")
    p.add_argument("--quick", action="store_true", help="a shortened build (200 SFT steps of 32) for tests")
    p.add_argument("--problems-only", action="store_true", help="only write problems/train.jsonl and test.jsonl")
    p.add_argument("--steps", type=int, default=None, help="override the number of SFT steps")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for the SFT (default 1, as the committed models were built: another count "
                        "trains faster on an idle machine with more cores but gives other weights)")
    p.add_argument("--kind", default="sft", help="which committed model to build: sft (default) or "
                   "sft_always_adds (grpo_course.tiny.build.VARIANTS)")


def run_build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .build import QUICK, VARIANTS, build_tiny

    if args.kind not in VARIANTS:
        import sys

        print(f"error: --kind {args.kind!r}: choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    settings = VARIANTS[args.kind]
    if args.quick:  # the quick schedule with this kind's demonstrator
        settings = replace(QUICK, sft=replace(QUICK.sft, flaw_rate=settings.sft.flaw_rate))
    if args.steps:
        settings = replace(settings, sft=replace(settings.sft, steps=args.steps))
    if args.threads is not None:
        if args.threads < 1:
            import sys

            print(f"error: --threads {args.threads}: give 1 or more", file=sys.stderr)
            return 2
        settings = replace(settings, threads=args.threads)
    record = build_tiny(args.out, settings, problems_only=args.problems_only, kind=args.kind)
    summary = {k: v for k, v in record.items() if k != "sha256"}
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def add_lab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the recipe's max_steps)")
    p.add_argument("--model-dir", default=None, help="start from this SFT model instead of data/tiny/sft")
    p.add_argument("--plot", default=None, help="save the learning curve as this PNG")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def run_lab_command(args: argparse.Namespace) -> int:
    from .lab import run_lab

    result = run_lab(seed=args.seed, steps=args.steps, model_dir=args.model_dir, threads=args.threads)
    print(result.summary())
    print()
    print(result.sharpening.summary())
    if args.plot:
        from .plots import plot_learning_curve

        plot_learning_curve([result], args.plot)
        print(f"learning curve: {args.plot}")
    return 0
