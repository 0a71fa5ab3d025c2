"""R1-Zero on a laptop, several seeds: step-writing, length and accuracy before and after answer-only GRPO.

    python benchmarks/emergence_lab.py                 # 3 seeds, with the coin-flip control
    python benchmarks/emergence_lab.py --no-control --plot data/emergence/emergence.png

Starts from the committed model (``data/emergence/sft``), runs ``grpo_course.emergence.lab.run_emergence``
per seed with the answer-only reward and (unless ``--no-control``) with the coin-flip reward, and prints
one row per run, the means of the answer-reward runs, and a last machine-readable line (means over
seeds, greedy decoding on the held-out problems, percentages in points, lengths in tokens):
``steps_before=<x> steps_after=<x> len_before=<tokens> len_after=<tokens> acc_before=<x> acc_after=<x>
grpo_seconds=<s>``. Wall time depends on the machine and its load: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from grpo_course.hardware import load_average

COLUMNS = ["seed", "reward", "steps b", "steps a", "len b", "len a", "acc b", "acc a", "s.steps b",
           "s.steps a", "s.acc b", "s.acc a", "zero-std", "grpo s"]


def row(r) -> list:
    g0, g1, s0, s1 = r.before["greedy"], r.after["greedy"], r.before["sampled"], r.after["sampled"]
    zero_std = statistics.mean(h["frac_reward_zero_std"] for h in r.history) if r.history else float("nan")
    return [r.seed, r.reward, g0["steps"], g1["steps"], g0["length"], g1["length"], g0["accuracy"],
            g1["accuracy"], s0["steps"], s1["steps"], s0["accuracy"], s1["accuracy"], zero_std, r.grpo_seconds]


def fmt(column: str, value) -> str:
    if isinstance(value, (int, str)):
        return f"{value:>9}"
    if column.startswith("len") or column == "grpo s":
        return f"{value:>9.1f}"
    return f"{value * 100:>8.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    ap.add_argument("--steps", type=int, default=None, help="GRPO steps (default: EMERGENCE_GRPO's max_steps)")
    ap.add_argument("--n-test", type=int, default=500, help="held-out problems measured before and after")
    ap.add_argument("--measure-every", type=int, default=2, help="held-out curve every N steps (not timed)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared CPU)")
    ap.add_argument("--no-control", action="store_true", help="skip the coin-flip reward runs")
    ap.add_argument("--plot", default=None, help="save the R1-style figure PNG here")
    ap.add_argument("--json", default=None, help="save every result as JSON here")
    args = ap.parse_args(argv)
    if args.seeds < 1 or (args.steps is not None and args.steps < 1) or args.n_test < 1:
        ap.error("--seeds, --steps and --n-test must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from grpo_course.emergence.lab import run_emergence

    print(f"{os.cpu_count()} CPUs, {load_average()} (before)", flush=True)
    results, controls = [], []
    for seed in range(args.seeds):
        for reward in ("answer",) if args.no_control else ("answer", "coin"):
            r = run_emergence(seed=seed, steps=args.steps, reward=reward, n_test=args.n_test,
                              measure_every=args.measure_every, threads=args.threads, progress=False)
            (results if reward == "answer" else controls).append(r)
            print(r.summary(), f"[{load_average()}]", flush=True)

    print("\ngreedy (b = before, a = after GRPO) and sampled (s., 4 per problem) on", args.n_test,
          "held-out problems; zero-std: mean frac_reward_zero_std of the training groups")
    print(" | ".join(f"{c:>9}" for c in COLUMNS))
    rows = [row(r) for r in results + controls]
    for values in rows:
        print(" | ".join(fmt(c, v) for c, v in zip(COLUMNS, values)))
    means = [statistics.mean(col) for col in list(zip(*rows[:len(results)]))[2:]]
    print(" | ".join([f"{'mean':>9}", f"{'answer':>9}"] + [fmt(c, v) for c, v in zip(COLUMNS[2:], means)]))
    print(f"{load_average()} (after)")
    if args.plot:
        from grpo_course.emergence.plots import plot_emergence

        plot_emergence(results, controls, path=args.plot)
        print(f"figure: {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in results + controls], f, indent=1)
    steps_b, steps_a, len_b, len_a, acc_b, acc_a = means[:6]
    print(f"steps_before={steps_b * 100:.1f} steps_after={steps_a * 100:.1f} len_before={len_b:.1f} "
          f"len_after={len_a:.1f} acc_before={acc_b * 100:.1f} acc_after={acc_a * 100:.1f} "
          f"grpo_seconds={means[-1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
