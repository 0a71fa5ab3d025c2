"""The tiny lab, several seeds: demonstrator vs SFT vs GRPO held-out accuracy, and GRPO wall time.

    python benchmarks/tiny_lab.py            # 3 seeds, the recipe's steps
    python benchmarks/tiny_lab.py --seeds 5 --plot data/tiny/learning_curve.png

Prints one row per seed, the means, and a last machine-readable line (means over seeds):
``demo=<acc%> sft=<acc%> grpo=<acc%> grpo_seconds=<s> sub_sft=<acc%> sub_sft_pass8=<acc%> sub_grpo=<acc%>``
(the ``sub_`` figures are on problems with a subtraction step: SFT greedy, SFT pass@8, GRPO greedy; the
sharpening verdict of ``grpo_course.tiny.verdict``). Accuracies are greedy, graded by the
course's lenient ``is_correct`` on held-out problems (``data/tiny/problems/test.jsonl``), never
seen in SFT or GRPO training. Wall time is machine- and load-dependent: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from grpo_course.hardware import load_average


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    ap.add_argument("--steps", type=int, default=None, help="GRPO steps (default: TINY_GRPO's max_steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--n-test", type=int, default=None, help="held-out problems (default: all 500)")
    ap.add_argument("--curve-every", type=int, default=2, help="held-out curve every N steps (not timed)")
    ap.add_argument("--plot", default=None, help="save the learning curve PNG here")
    ap.add_argument("--json", default=None, help="save every result as JSON here")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from grpo_course.tiny.lab import run_lab

    print(f"{os.cpu_count()} CPUs, {load_average()} (before)", flush=True)
    results = []
    for seed in range(args.seeds):
        r = run_lab(seed=seed, steps=args.steps, threads=args.threads, n_test=args.n_test,
                    curve_every=args.curve_every, progress=False)
        results.append(r)
        print(r.summary(), f"[{load_average()}]", flush=True)

    cols = ["seed", "steps", "demo", "sft", "grpo", "sft p@1", "grpo p@1", "sft p@8", "grpo p@8",
            "zero-std", "grpo s"]
    print()
    print(" | ".join(f"{c:>8}" for c in cols))
    rows = []
    for r in results:
        zero_std = statistics.mean(h["frac_reward_zero_std"] for h in r.history) if r.history else float("nan")
        row = [r.seed, r.steps, r.demonstrator, r.sft["greedy"], r.grpo["greedy"], r.sft["pass@1"],
               r.grpo["pass@1"], r.sft["pass@8"], r.grpo["pass@8"], zero_std, r.grpo_seconds]
        rows.append(row)
        print(" | ".join(f"{v:>8}" if isinstance(v, int) else
                         (f"{v:>8.1f}" if c == "grpo s" else f"{v:>8.1%}") for c, v in zip(cols, row)))
    means = [statistics.mean(col) for col in zip(*rows)]
    print(" | ".join(f"{'mean':>8}" if i == 0 else (f"{v:>8.0f}" if i == 1 else
                     (f"{v:>8.1f}" if cols[i] == "grpo s" else f"{v:>8.1%}")) for i, v in enumerate(means)))
    print(f"{load_average()} (after)")
    # What GRPO taught the model (grpo_course.tiny.verdict), on problems with a subtraction step
    subs = [(r.sharpening.greedy("before", "subtraction"), r.sharpening.pass_at(8, "before", "subtraction"),
             r.sharpening.greedy("after", "subtraction"), r.sharpening.kind) for r in results]
    print()
    print("subtraction problems: SFT greedy | SFT pass@8 | GRPO greedy | verdict")
    for r, (a, b, c, kind) in zip(results, subs):
        print(f"seed {r.seed}: {a:8.1%} | {b:8.1%} | {c:8.1%} | {kind}")
    print(results[0].sharpening.sentence())
    if args.plot:
        from grpo_course.tiny.plots import plot_learning_curve

        plot_learning_curve(results, args.plot)
        print(f"learning curve: {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=1)
    demo, sft, grpo, seconds = means[2], means[3], means[4], means[-1]
    sub = [statistics.mean(col) for col in zip(*(row[:3] for row in subs))]
    print(f"demo={demo * 100:.1f} sft={sft * 100:.1f} grpo={grpo * 100:.1f} grpo_seconds={seconds:.1f} "
          f"sub_sft={sub[0] * 100:.1f} sub_sft_pass8={sub[1] * 100:.1f} sub_grpo={sub[2] * 100:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
