"""Every benchmark script runs end to end with tiny arguments (CleanRL's rule: CI runs every script).

The figures a benchmark prints are measured by running it in full (its docstring gives the command); here
only the plumbing is checked: the script starts, finishes with exit status 0, and a benchmark whose issue
asked for a machine-readable last line prints every key of it with a number.
"""

import os
import re
import subprocess
import sys

import pytest

from grpo_course.paths import REPO_ROOT

NUMBER = r"-?\d+(?:\.\d+)?"

# script, tiny arguments, keys of the machine-readable last line (None: no such line asked for)
RUNS = [
    ("bench_math_reward.py", ["--n", "40"], None),
    ("bench_code_reward.py", ["--seed-n", "2", "--repeat", "1", "--workers", "2", "--timeout", "3"], None),
    ("preflight_time.py", ["--runs", "1"], ["seconds_max", "seconds_median"]),
    ("tiny_lab.py", ["--seeds", "1", "--steps", "2", "--n-test", "8", "--curve-every", "0", "--threads", "1"],
     ["demo", "sft", "grpo", "grpo_seconds"]),
    ("emergence_lab.py", ["--seeds", "1", "--steps", "2", "--n-test", "8", "--measure-every", "0", "--no-control"],
     ["steps_before", "steps_after", "len_before", "len_after", "acc_before", "acc_after", "grpo_seconds"]),
    ("counterfactuals.py", ["--seeds", "1", "--kl-seeds", "0", "--n-test", "8"],
     ["default_gain", "flaw_always_gain", "low_diversity_gain", "restored_gain", "scratch_acc", "scratch_seconds"]),
]


def test_every_benchmark_script_is_run_here():
    scripts = {p.name for p in (REPO_ROOT / "benchmarks").glob("*.py")}
    assert scripts == {name for name, _, _ in RUNS}


@pytest.mark.slow
@pytest.mark.parametrize("script, args, keys", RUNS, ids=[r[0] for r in RUNS])
def test_benchmark_runs_with_tiny_arguments(script, args, keys, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    if keys is not None:
        last = proc.stdout.strip().splitlines()[-1]
        for key in keys:
            assert re.search(rf"(?:^|\s){key}={NUMBER}(?:\s|$)", last), f"{key}= missing in: {last}"
