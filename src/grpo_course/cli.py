"""``grpo-course``: the command line for everything the notebooks do.

Each subcommand imports its module only when run, so ``grpo-course profile``
stays instant and never touches torch.
"""

from __future__ import annotations

import argparse
import sys

from .usage import EXIT_USAGE, UsageError, positive_int


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is a :class:`~grpo_course.usage.UsageError`: :func:`main` prints it as one
    ``error:`` line (argparse prints the whole usage block first)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _cmd_profile(args: argparse.Namespace) -> int:
    from .bootstrap import check_runtime
    from .hardware import choose_profile, current_profile, detect_device

    if args.name:
        profile, reason = choose_profile(None, args.name)
    else:
        profile, reason = current_profile()
    device = detect_device() if profile.device == "cuda" else None
    check = check_runtime(profile, reason, device)
    print(check.report())
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train.command import run  # every task: code, medcalc and legal-qa bring their own model

    return run(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate.command import run  # GSM8K: stage 05's math evaluation; other tasks: their own metric

    return run(args)


def _cmd_lora_params(args: argparse.Namespace) -> int:
    from .lora.counts import lora_param_count

    try:
        count = lora_param_count(args.model, args.rank, args.targets)
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    print(f"{count.architecture}: LoRA r={count.r} on {','.join(count.target_modules)}")
    print(count.table())
    print(count.total)  # the last line is the exact total, digits only
    return 0


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from .tiny.command import run_build

    return run_build(args)


def _cmd_tiny_lab(args: argparse.Namespace) -> int:
    from .tiny.command import run_lab_command

    return run_lab_command(args)


def _cmd_smoke(args: argparse.Namespace) -> int:
    from .hardware import UnknownProfileError, get_profile

    try:
        profile = get_profile(args.profile) if args.profile else None
    except UnknownProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .smoke import main as smoke_main

    return smoke_main(profile.name if profile else None, args.output_dir)


def _cmd_preflight(args: argparse.Namespace) -> int:
    from .preflight import run  # stage 08: will GRPO learn with these settings? go / no-go before training

    return run(args)
def _cmd_build_emergence(args: argparse.Namespace) -> int:
    from .emergence.command import run_build

    return run_build(args)


def _cmd_emergence_lab(args: argparse.Namespace) -> int:
    from .emergence.command import run_lab_command

    return run_lab_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grpo-course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="print the hardware profile this runtime gets, and why")
    p.add_argument("--name", help="show a named profile instead of detecting one")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("train", help="GRPO-train with the current profile (cpu-tiny: the tiny model)")
    from .train.command import add_arguments as add_train_arguments

    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="evaluate on held-out problems: before/after (adapter off/on), pass@k, audit")
    from .evaluate.command import add_arguments as add_eval_arguments

    add_eval_arguments(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("lora-params", help="exact trainable LoRA parameters (per module, then the total)")
    p.add_argument("--model", default="llama-3.2-3b", help="architecture key or hub id (data/architectures.json)")
    p.add_argument("--rank", type=positive_int, default=64, help="LoRA rank r")
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj",
                   help="comma-separated modules, or all-linear (the seven projections) / attention / mlp")
    p.set_defaults(func=_cmd_lora_params)

    from .tiny.command import add_build_arguments, add_lab_arguments

    p = sub.add_parser("build-tiny", help="rebuild data/tiny (problems, tokenizer, SFT model) deterministically")
    add_build_arguments(p)
    p.set_defaults(func=_cmd_build_tiny)

    p = sub.add_parser("tiny-lab", help="GRPO the tiny SFT model on CPU; held-out accuracy before and after")
    add_lab_arguments(p)
    p.set_defaults(func=_cmd_tiny_lab)

    p = sub.add_parser("smoke", help="this runtime's real training path on a tiny model in about a minute: "
                                     "SFT, GRPO with a resume, saves, before/after; last line ok/FAILED")
    p.add_argument("--profile", help="run another profile's path (default: this runtime's)")
    p.add_argument("--output-dir", help="keep the run here (default: a temporary folder, deleted after)")
    p.set_defaults(func=_cmd_smoke)

    p = sub.add_parser("preflight", help="before training: rewards, prompt lengths, G samples per prompt, fit; "
                                         "go / no-go with the fixes (exit 0 / 1)")
    from .preflight import add_arguments as add_preflight_arguments

    add_preflight_arguments(p)
    p.set_defaults(func=_cmd_preflight)
    from .emergence.command import add_build_arguments as add_emergence_build_arguments
    from .emergence.command import add_lab_arguments as add_emergence_lab_arguments

    p = sub.add_parser("build-emergence", help="rebuild data/emergence (the R1-Zero lab's starting model)")
    add_emergence_build_arguments(p)
    p.set_defaults(func=_cmd_build_emergence)

    p = sub.add_parser("emergence-lab", help="GRPO with an answer-only reward; step-writing before and after")
    add_emergence_lab_arguments(p)
    p.set_defaults(func=_cmd_emergence_lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. A mistake in what was asked (an unknown task or profile, a number that must be
    positive, a folder that cannot be written, nothing to evaluate) is one ``error:`` line on stderr and
    exit status 2, never a traceback."""
    from .hardware import UnknownProfileError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, UnknownProfileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
