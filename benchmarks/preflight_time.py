"""How long ``grpo-course preflight --task gsm8k`` takes on this machine's CPU, against the two-minute target.

The target (issue 18): ``go`` in under two minutes on 2 cores. Each run is the real command in a fresh
process (imports, model load, the reward checks, 32 x 8 samples, the fit), timed from start to exit.

    python benchmarks/preflight_time.py            # 3 runs
    python benchmarks/preflight_time.py --runs 1

The last line is machine-readable:
``preflight_time: seconds_max=<s> seconds_median=<s> target_seconds=120 verdict=<go|...> ok=<true|false>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "GRPO_COURSE_PROFILE": "cpu-tiny", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    seconds, verdicts = [], set()
    for i in range(args.runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "grpo_course.cli", "preflight", "--task", "gsm8k"],
                              capture_output=True, text=True, env=env)
        seconds.append(time.perf_counter() - start)
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
        verdicts.add(last.split()[1] if last.startswith("preflight:") else "error")
        print(f"run {i + 1}: {seconds[-1]:.1f} s, exit {proc.returncode}: {last}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPU cores, load average {load:.2f}")
    verdict = verdicts.pop() if len(verdicts) == 1 else "mixed"
    ok = max(seconds) < TARGET_SECONDS and verdict == "go"
    print(f"preflight_time: seconds_max={max(seconds):.1f} seconds_median={statistics.median(seconds):.1f} "
          f"target_seconds={TARGET_SECONDS} verdict={verdict} ok={str(ok).lower()}")


if __name__ == "__main__":
    main()
