"""``grpo-course``: the command line for everything the notebooks do.

Each subcommand imports its module only when run, so ``grpo-course profile``
stays instant and never touches torch.
"""

from __future__ import annotations

import argparse
import sys


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
    from .hardware import current_profile, describe

    profile, reason = current_profile()
    print(describe(profile, reason))
    print(f"Would GRPO-train {profile.model_id} for {profile.max_steps} steps with G={profile.num_generations}; "
          "the training pipeline lands with stage 04.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grpo-course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="print the hardware profile this runtime gets, and why")
    p.add_argument("--name", help="show a named profile instead of detecting one")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("train", help="GRPO-train with the current profile (cpu-tiny: the tiny model)")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
