"""Code reward throughput: the sandbox pool against the seed's one ``python -m pytest`` per completion.

Both run in one process, on the same HumanEval-style candidates (problems written for this
benchmark: a prompt with signature and docstring, ``check(candidate)`` tests, an entry point,
and correct, buggy, crashing and looping completions). The seed's reward is reproduced as
written: prompt + completion into ``solution.py``, ``from solution import <entry> as
candidate`` + tests + ``check(candidate)`` into ``test_solution.py``, ``python -m pytest -q``
with an 8 s timeout, one completion after another, passed = return code 0.

    python benchmarks/bench_code_reward.py              # defaults: 8 seed runs, 40x the set in the pool
    python benchmarks/bench_code_reward.py --seed-n 4 --repeat 10

Prints checks per second for both and their ratio, CPU time per check for both and their ratio
(the load-independent figure: wall-clock rates on a shared machine understate the pool), the
isolation layers that were on, and whether the verdicts agree.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from grpo_course.rewards.code import build_program
from grpo_course.rewards.sandbox import Sandbox

PROBLEMS = [
    {
        "entry_point": "running_max",
        "prompt": 'from typing import List\n\n\ndef running_max(xs: List[int]) -> List[int]:\n'
                  '    """Each position holds the largest value seen so far.\n'
                  '    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n    """\n',
        "test": "def check(candidate):\n    assert candidate([]) == []\n    assert candidate([1, 3, 2, 5]) == [1, 3, 3, 5]\n"
                "    assert candidate([5, 4, 3]) == [5, 5, 5]\n    assert candidate([-2, -1]) == [-2, -1]\n",
        "good": "    out, best = [], None\n    for x in xs:\n        best = x if best is None else max(best, x)\n"
                "        out.append(best)\n    return out\n",
        "bad": "    return sorted(xs)\n",
    },
    {
        "entry_point": "vowel_count",
        "prompt": 'def vowel_count(s: str) -> int:\n    """Number of vowels (a, e, i, o, u, any case) in s.\n'
                  '    >>> vowel_count("Banana")\n    3\n    """\n',
        "test": "def check(candidate):\n    assert candidate('') == 0\n    assert candidate('Banana') == 3\n"
                "    assert candidate('AEIOU xyz') == 5\n    assert candidate('rhythm') == 0\n",
        "good": "    return sum(ch in 'aeiou' for ch in s.lower())\n",
        "bad": "    return sum(ch in 'aeiou' for ch in s)\n",
    },
    {
        "entry_point": "is_palindrome_number",
        "prompt": 'def is_palindrome_number(n: int) -> bool:\n    """True if the decimal digits of n read the same '
                  'backwards; negatives are not palindromes.\n    """\n',
        "test": "def check(candidate):\n    assert candidate(121) is True\n    assert candidate(-121) is False\n"
                "    assert candidate(10) is False\n    for i in range(10):\n        assert candidate(i) is True\n",
        "good": "    return n >= 0 and str(n) == str(n)[::-1]\n",
        "bad": "    return str(abs(n)) == str(abs(n))[::-1]\n",
    },
    {
        "entry_point": "merge_intervals",
        "prompt": 'from typing import List, Tuple\n\n\ndef merge_intervals(iv: List[Tuple[int, int]]) -> '
                  'List[Tuple[int, int]]:\n    """Merge overlapping closed intervals; return them sorted.\n    """\n',
        "test": "def check(candidate):\n    assert candidate([]) == []\n    assert candidate([(1, 3), (2, 4)]) == [(1, 4)]\n"
                "    assert candidate([(5, 6), (1, 2)]) == [(1, 2), (5, 6)]\n"
                "    assert candidate([(1, 10), (2, 3), (11, 12)]) == [(1, 10), (11, 12)]\n",
        "good": "    out = []\n    for a, b in sorted(iv):\n        if out and a <= out[-1][1]:\n"
                "            out[-1] = (out[-1][0], max(out[-1][1], b))\n        else:\n            out.append((a, b))\n"
                "    return out\n",
        "bad": "    return sorted(iv)\n",
    },
    {
        "entry_point": "digit_sum_power",
        "prompt": 'def digit_sum_power(base: int, exp: int) -> int:\n    """Sum of the decimal digits of base ** exp.\n'
                  '    >>> digit_sum_power(2, 15)\n    26\n    """\n',
        "test": "def check(candidate):\n    assert candidate(2, 15) == 26\n    assert candidate(10, 5) == 1\n"
                "    assert candidate(7, 0) == 1\n    assert candidate(2, 1000) == 1366\n",
        "good": "    return sum(int(d) for d in str(base ** exp))\n",
        "bad": "    return base ** exp % 9\n",
    },
    {
        "entry_point": "rotate_left",
        "prompt": 'def rotate_left(s: str, k: int) -> str:\n    """Rotate s left by k places (k may exceed len(s)).\n'
                  '    >>> rotate_left("abcde", 2)\n    \'cdeab\'\n    """\n',
        "test": "def check(candidate):\n    assert candidate('abcde', 2) == 'cdeab'\n    assert candidate('abc', 3) == 'abc'\n"
                "    assert candidate('abc', 4) == 'bca'\n    assert candidate('', 5) == ''\n",
        "good": "    if not s:\n        return s\n    k %= len(s)\n    return s[k:] + s[:k]\n",
        "bad": "    return s[k:] + s[:k]\n",
    },
]

# Completions that are neither right nor wrong answers: they crash, exit early or loop.
HOSTILE = {
    "exit": "    import sys\n    sys.exit(0)\n",
    "raise": "    raise RuntimeError('no idea')\n",
    "loop": "    while True:\n        pass\n",
}


def candidates(include_loop: bool) -> list[dict]:
    out = []
    for p in PROBLEMS:
        kinds = {"good": p["good"], "bad": p["bad"], **HOSTILE}
        if not include_loop:
            kinds.pop("loop")
        for kind, completion in kinds.items():
            out.append({**p, "completion": completion, "kind": kind})
    return out


def seed_reward(c: dict, timeout: float = 8.0) -> tuple[float, int | str]:
    """The seed's reward function body for one completion (``python -m pytest`` per completion)."""
    with tempfile.TemporaryDirectory() as td:
        sol_path = os.path.join(td, "solution.py")
        test_path = os.path.join(td, "test_solution.py")
        with open(sol_path, "w", encoding="utf-8") as f:
            f.write(c["prompt"])
            f.write(c["completion"])
            f.write("\n")
        with open(test_path, "w", encoding="utf-8") as f:
            f.write(f"from solution import {c['entry_point']} as candidate\n")
            f.write(c["test"])
            f.write("\n")
            f.write("check(candidate)\n")
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", test_path], cwd=td,
                                  capture_output=True, text=True, timeout=timeout)
            return (1.0 if proc.returncode == 0 else 0.0), proc.returncode
        except subprocess.TimeoutExpired:
            return 0.0, "timeout"


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-n", type=int, default=8, help="completions checked the seed's way")
    ap.add_argument("--seed-timeout", type=float, default=120.0,
                    help="the seed uses 8 s; pytest with this venv's plugins can need more on a busy machine")
    ap.add_argument("--repeat", type=int, default=40, help="times the candidate set goes through the pool")
    ap.add_argument("--workers", type=int, default=None, help="pool size (default: CPU count)")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f} (a busy machine slows both sides)")

    # The seed's approach, on the non-looping candidates (a loop costs it the full 8 s timeout).
    seed_set = candidates(include_loop=False)[: args.seed_n]
    t0, sc0 = time.perf_counter(), cpu_children()
    seed = [seed_reward(c, args.seed_timeout) for c in seed_set]
    seed_wall = time.perf_counter() - t0
    seed_cpu = (cpu_children() - sc0) / len(seed_set)
    seed_rate = len(seed_set) / seed_wall

    # The sandbox pool (every protection this machine offers), on the same candidates and more.
    def jobs(cs):
        return [{"program": build_program(c["completion"], c["entry_point"], c["prompt"]),
                 "tests": c["test"], "entry_point": c["entry_point"]} for c in cs]

    c0 = cpu_children()
    with Sandbox(workers=args.workers) as sb:
        layers = sb.isolation["layers"]
        ours_same = sb.run_many(jobs(seed_set), timeout=args.timeout)
        full = candidates(include_loop=False) * args.repeat
        s0 = cpu_self()
        t0 = time.perf_counter()
        results = sb.run_many(jobs(full), timeout=args.timeout)
        wall = time.perf_counter() - t0
        parent_cpu = cpu_self() - s0
        workers = sb.workers
    pool_cpu = cpu_children() - c0  # zygotes, runners and judges, counted once they have exited
    rate = len(full) / wall
    with Sandbox(workers=args.workers) as sb:  # separate pool: looping checks burn CPU until killed
        loops = [c for c in candidates(include_loop=True) if c["kind"] == "loop"]
        t1 = time.perf_counter()
        loop_results = sb.run_many(jobs(loops), timeout=args.timeout)
        loop_wall = time.perf_counter() - t1

    print(f"\nisolation layers on: {', '.join(k for k, v in layers.items() if v) or 'none'}")
    off = [k for k, v in layers.items() if not v]
    if off:
        print(f"isolation layers unavailable here: {', '.join(off)}")
    print(f"\nseed (python -m pytest per completion): {len(seed_set)} checks in {seed_wall:.1f} s = "
          f"{seed_rate:.2f} checks/s ({1000 * seed_wall / len(seed_set):.0f} ms each)")
    print(f"sandbox pool ({workers} workers):              {len(full)} checks in {wall:.2f} s = {rate:.1f} checks/s")
    print(f"ratio (pool / seed, measured side by side): {rate / seed_rate:.0f}x")
    per_check = pool_cpu / (len(full) + len(seed_set))
    print(f"pool CPU per check (all its processes, start-up included): {1000 * per_check:.1f} ms "
          f"+ {1000 * parent_cpu / len(full):.1f} ms in the calling process -> about "
          f"{os.cpu_count() / (per_check + parent_cpu / len(full)):.0f} checks/s if {os.cpu_count()} cores were idle")
    ours_cpu = per_check + parent_cpu / len(full)
    print(f"CPU per check: seed {1000 * seed_cpu:.0f} ms, pool {1000 * ours_cpu:.1f} ms -> "
          f"ratio {seed_cpu / ours_cpu:.0f}x (independent of how busy the machine is)")
    print(f"{len(loops)} infinite-loop completions: {loop_wall:.2f} s in total "
          f"(timeout {args.timeout} s, run in parallel), statuses {sorted({r.status for r in loop_results})}")

    # Verdicts on the same candidates.
    seed_pass = [r for r, _ in seed]
    ours_pass = [float(r.all_passed) for r in ours_same]
    codes = sorted({str(rc) for _, rc in seed})
    print(f"\nverdicts on the same {len(seed_set)} candidates (1 = all tests pass):")
    print(f"  kinds:                 {[c['kind'] for c in seed_set]}")
    print(f"  sandbox all-pass:      {[int(x) for x in ours_pass]}")
    print(f"  seed (returncode==0):  {[int(x) for x in seed_pass]}   pytest return codes seen: {codes}")
    if all(x == 0 for x in seed_pass) and any(ours_pass):
        print("  note: `check(candidate)` runs at import, so pytest collects no test function and exits 5")
        print("        ('no tests collected') when the tests pass, 2 when they fail: the seed's reward is 0.0")
        print("        for every completion. Counting exit code 5 as a pass:")
        fixed = [int(rc == 5) for _, rc in seed]
        print(f"  seed (returncode==5):  {fixed}   agrees with the sandbox: {fixed == [int(x) for x in ours_pass]}")
    else:
        print(f"  agree: {seed_pass == ours_pass}")
    good = [r for c, r in zip(candidates(include_loop=False) * args.repeat, results) if c["kind"] == "good"]
    print(f"\nsanity: {sum(r.all_passed for r in good)}/{len(good)} correct completions passed in the pool; "
          f"{sum(r.all_passed for r in results) - sum(r.all_passed for r in good)} others passed")


if __name__ == "__main__":
    main()
