"""Code rewards and their sandbox: verdicts, extraction, TRL signature, and every attack scores 0."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_course.rewards.code import (
    build_program,
    code_all_pass_reward,
    code_pass_fraction_reward,
    extract_code,
    make_code_reward,
    run_tests,
)
from grpo_course.rewards.sandbox import IsolationConfig, Sandbox, TestResult

ADD = "def add(a, b):\n    return a + b\n"
ADD_CHECK = (
    "def check(candidate):\n"
    "    assert candidate(1, 2) == 3\n"
    "    assert candidate(-1, 1) == 0\n"
    "    for i in range(20):\n"
    "        assert candidate(i, i) == 2 * i\n"
    "    assert True, 'debugging note: constant asserts are not counted'\n"
)
ADD_ASSERTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2) as sandbox:
        yield sandbox


def layer(sb, name: str) -> bool:
    return bool(sb.isolation["layers"].get(name))


def needs(sb, *names):
    missing = [n for n in names if not layer(sb, n)]
    if missing:
        pytest.skip(f"isolation layer(s) {missing} not available here: {sb.isolation['runner']}")


# --- verdicts on honest programs -------------------------------------------------------------

@pytest.mark.parametrize(
    "program, tests, entry, passed, total, status",
    [
        (ADD, ADD_CHECK, "add", 3, 3, "passed"),
        ("def add(a, b):\n    return a * b\n", ADD_CHECK, "add", 0, 3, "failed"),  # 2*2 == 2+2 only once
        ("def add(a, b):\n    return 2 * a if a == b else a + b\n", ADD_CHECK, "add", 3, 3, "passed"),
        ("def add(a, b):\n    return a + b if a >= 0 else 1\n", ADD_CHECK, "add", 2, 3, "failed"),
        (ADD, ADD_ASSERTS, None, 3, 3, "passed"),
        ("def add(a, b):\n    return 3\n", ADD_ASSERTS, None, 1, 3, "failed"),
        ("def add(a, b):\n    raise ValueError('no')\n", ADD_ASSERTS, None, 0, 3, "failed"),
        ("def add(a, b)\n    return a + b\n", ADD_ASSERTS, None, 0, 3, "program_error"),
        ("x = 1\n", ADD_ASSERTS, None, 0, 3, "failed"),  # NameError inside each assert
        (ADD, "def test_a():\n    assert add(1, 1) == 2\n\ndef test_b():\n    assert add(1, 1) == 3\n", None,
         1, 2, "failed"),
        (ADD, "def check(candidate):\n    if candidate(1, 1) != 2:\n        raise ValueError\n", "add",
         1, 1, "passed"),  # no assert: finishing check() is the test
        (ADD, "def check(candidate):\n    if candidate(1, 1) != 3:\n        raise ValueError\n", "add",
         0, 1, "error"),
        (ADD, "", None, 0, 0, "invalid_tests"),
        (ADD, "assert True\n", None, 0, 0, "invalid_tests"),
        (ADD, "def check(candidate:\n", "add", 0, 0, "invalid_tests"),
    ],
)
def test_verdicts(sb, program, tests, entry, passed, total, status):
    res = sb.run(program, tests, entry_point=entry, timeout=5)
    assert (res.passed, res.total, res.status) == (passed, total, status), res


def test_plain_values_round_trip(sb):
    program = (
        "from collections import Counter, OrderedDict, deque, namedtuple\n"
        "from fractions import Fraction\n"
        "P = namedtuple('P', 'x y')\n"
        "def f(kind):\n"
        "    return {'tuple': (1, (2, 3)), 'set': {1, 2}, 'dict': {1: 'a', (2, 3): [4.5]},\n"
        "            'bytes': b'\\x00ab', 'nan': float('nan'), 'big': 10 ** 5000, 'frac': Fraction(1, 3),\n"
        "            'counter': Counter('aab'), 'nt': P(1, 2), 'deque': deque([1]), 'none': None,\n"
        "            'complex': 1 + 2j, 'fn': (lambda y: y * 3), 'obj': object(),\n"
        "            'gen': (i * i for i in range(3)), 'range': range(1, 9, 2)}[kind]\n"
    )
    tests = [
        "assert f('tuple') == (1, (2, 3)) and isinstance(f('tuple'), tuple)",
        "assert f('set') == {1, 2}",
        "assert f('dict') == {1: 'a', (2, 3): [4.5]}",
        "assert f('bytes') == b'\\x00ab'",
        "import math\nassert math.isnan(f('nan'))",
        "assert f('big') == 10 ** 5000",
        "from fractions import Fraction\nassert f('frac') == Fraction(1, 3)",
        "assert f('counter') == {'a': 2, 'b': 1}",
        "assert f('nt') == (1, 2)",
        "from collections import deque\nassert f('deque') == deque([1])",
        "assert f('none') is None",
        "assert f('complex') == 1 + 2j",
        "assert f('fn')(4) == 12",  # a returned function stays callable
        "assert f('obj') != f('obj')",  # an opaque object equals nothing but itself
        "assert list(f('gen')) == [0, 1, 4] and f('gen') != [0, 1, 4]",  # iterators stay iterators
        "assert f('range') == range(1, 9, 2)",
    ]
    res = sb.run(program, tests, timeout=5)
    assert (res.passed, res.total, res.status) == (len(tests), len(tests), "passed"), res


def test_exceptions_keep_their_builtin_type(sb):
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = ("def check(candidate):\n"
             "    try:\n        candidate(-1)\n        assert False\n    except ValueError:\n        pass\n"
             "    assert candidate(2) == 2\n")
    res = sb.run(program, tests, entry_point="f", timeout=5)
    assert res.status == "passed", res


def test_result_type_and_run_tests_api():
    res = run_tests(ADD, "assert add(2, 3) == 5\nassert add(2, 3) == 6", timeout=5)
    assert isinstance(res, TestResult)
    assert (res.passed, res.total, res.fraction, res.all_passed) == (1, 2, 0.5, False)


def test_concurrent_callers_do_not_mix_results(sb):
    def worker(k, out):
        for j in range(6):
            value = k * 100 + j
            res = sb.run(f"def f():\n    return {value}\n", f"assert f() == {value}\nassert f() != {value + 1}",
                         timeout=5)
            out.append(res.status == "passed" and res.passed == 2)

    outs = [[] for _ in range(4)]
    threads = [threading.Thread(target=worker, args=(k, outs[k])) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(all(o) and len(o) == 6 for o in outs), outs


def test_run_many_keeps_order(sb):
    jobs = [{"program": f"def f():\n    return {i}\n", "tests": f"assert f() == {i if i % 3 else -1}"}
            for i in range(12)]
    results = sb.run_many(jobs, timeout=5)
    assert [r.status for r in results] == ["passed" if i % 3 else "failed" for i in range(12)]


# --- attacks: each must score 0 and leave the sandbox working --------------------------------

def assert_zero_and_alive(sb, res, tests=ADD_ASSERTS):
    assert res.passed == 0 and not res.all_passed, res
    follow = sb.run(ADD, tests, timeout=5)
    assert follow.status == "passed", f"sandbox broken after the attack: {follow}"


def test_infinite_loop_at_top_level(sb):
    t0 = time.monotonic()
    res = sb.run("while True:\n    pass\n" + ADD, ADD_ASSERTS, timeout=1)
    assert res.status == "timeout" and time.monotonic() - t0 < 15, res  # start-up may be included
    assert_zero_and_alive(sb, res)


def test_infinite_loop_inside_the_function(sb):
    res = sb.run("import time\ndef add(a, b):\n    while True:\n        time.sleep(0.01)\n", ADD_ASSERTS, timeout=1)
    assert res.status == "timeout", res
    assert_zero_and_alive(sb, res)


def test_rlimit_cpu_kills_a_spinner_that_ignores_sigxcpu():
    """The CPU-time limit backs up the wall clock: soft limit -> SIGXCPU (ignored here), hard
    limit one second later -> SIGKILL."""
    import subprocess
    import sys

    from grpo_course.rewards.sandbox import WORKER

    code = ("import importlib.util, signal\n"
            f"spec = importlib.util.spec_from_file_location('w', {str(WORKER)!r})\n"
            "w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)\n"
            "w.set_rlimits(1, 1024, 4096)\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-I", "-c", code], timeout=60)
    assert proc.returncode == -9 and time.monotonic() - t0 < 60


def test_fork_bomb(sb):
    res = sb.run("import os\nwhile True:\n    os.fork()\n" + ADD, ADD_ASSERTS, timeout=3)
    assert res.status == "program_error" and "PermissionError" in res.details, res
    counting = ("import os\nn = 0\nfor _ in range(1000):\n    try:\n        os.fork()\n        n += 1\n"
                "    except OSError:\n        pass\ndef forks():\n    return n\n")
    res = sb.run(counting, ["assert forks() > 0"], timeout=3)
    assert res.status == "failed", res  # every fork was refused
    assert_zero_and_alive(sb, res)


def test_subprocess_and_threads_of_processes_are_refused(sb):
    program = ("import subprocess\ndef add(a, b):\n"
               "    return int(subprocess.run(['python3', '-c', 'print(3)'], capture_output=True).stdout)\n")
    res = sb.run(program, ["assert add(1, 2) == 3"], timeout=3)
    assert res.passed == 0, res
    assert "PermissionError" in res.details or "OSError" in res.details or "Error" in res.details


def test_memory_bomb(sb):
    res = sb.run("blob = bytearray(8 * 1024 ** 3)\n" + ADD, ADD_ASSERTS, timeout=3)
    assert res.status == "program_error" and "MemoryError" in res.details, res
    res = sb.run("def add(a, b):\n    x = [0] * (10 ** 10)\n    return a + b\n", ADD_ASSERTS, timeout=3)
    assert res.passed == 0, res
    assert_zero_and_alive(sb, res)


def test_files_outside_the_work_dir_are_untouchable(sb, tmp_path):
    needs(sb, "runner_landlock")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = tmp_path / "planted.txt"
    program = (
        "import os, shutil\n"
        "def add(a, b):\n"
        "    done = 0\n"
        f"    for act in (lambda: os.remove({str(victim)!r}), lambda: open({str(planted)!r}, 'w').write('x'),\n"
        f"                lambda: shutil.rmtree({str(tmp_path)!r}), lambda: open('/tmp/grpo-escape', 'w')):\n"
        "        try:\n            act()\n            done += 1\n        except OSError:\n            pass\n"
        "    open('inside.txt', 'w').write('fine')  # its own directory is writable\n"
        "    return a + b if done == 4 else -1\n"
    )
    res = sb.run(program, ADD_ASSERTS, timeout=5)
    assert victim.read_text() == "keep me" and not planted.exists() and not os.path.exists("/tmp/grpo-escape")
    assert_zero_and_alive(sb, res)


def test_early_sys_exit(sb):
    res = sb.run("import sys\nsys.exit(0)\n" + ADD, ADD_ASSERTS, timeout=3)
    assert res.status == "program_error" and "SystemExit" in res.details, res
    assert_zero_and_alive(sb, res)


def test_early_os_exit(sb):
    res = sb.run("import os\nos._exit(0)\n" + ADD, ADD_ASSERTS, timeout=3)
    assert res.status == "crashed", res
    assert_zero_and_alive(sb, res)


def test_exit_inside_the_call(sb):
    res = sb.run("import os\ndef add(a, b):\n    os._exit(0)\n", ADD_CHECK, entry_point="add", timeout=3)
    assert res.status == "crashed", res
    assert_zero_and_alive(sb, res)


def test_monkeypatching_builtins_and_check(sb):
    program = (
        "import builtins, sys\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "builtins.bool = lambda *a: True\n"
        "builtins.isinstance = lambda *a: True\n"
        "def check(candidate):\n    return None\n"  # the tests' own check() must win
        "sys.settrace(lambda *a: None)\n"
        "def add(a, b):\n    return 0\n"
    )
    # Patched bool/isinstance break the runner's own protocol: it fails closed. At most the one
    # assert that a constant 0 satisfies may pass; never the suite.
    for tests, entry in ((ADD_CHECK, "add"), (ADD_ASSERTS, None)):
        res = sb.run(program, tests, entry_point=entry, timeout=3)
        assert res.passed <= 1 and res.status != "passed", res
    # Patching only what the tests would use leaves the runner working: the verdict is exact.
    gentle = "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n" \
             "def check(candidate):\n    return None\ndef add(a, b):\n    return 0\n"
    res = sb.run(gentle, ADD_CHECK, entry_point="add", timeout=3)
    assert (res.passed, res.status) == (1, "failed"), res  # only add(-1, 1) == 0 holds
    assert_zero_and_alive(sb, sb.run(program.replace("return 0", "return -7"), ADD_ASSERTS, timeout=3))


def test_sabotaging_the_runner_protocol_fails_closed(sb):
    program = (
        "import sys\n"
        "for name in list(sys.modules):\n    m = sys.modules[name]\n"
        "    for attr in ('write_frame', 'read_frame', 'encode', 'decode', 'dumps'):\n"
        "        if hasattr(m, attr):\n            setattr(m, attr, lambda *a, **k: b'{\"ok\": 3}')\n"
        "def add(a, b):\n    return None\n"
    )
    res = sb.run(program, ADD_ASSERTS, timeout=1)
    assert_zero_and_alive(sb, res)


def test_always_equal_objects(sb):
    program = (
        "class Liar:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "    def __bool__(self):\n        return True\n"
        "class Str(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "def add(a, b):\n    return Liar()\n"
        "def name(x):\n    return Str('wrong')\n"
    )
    res = sb.run(program, ADD_ASSERTS + ["assert add(1, 1)", "assert name(1) == 'right'"], timeout=3)
    assert res.passed == 0 and res.status == "failed", res


def test_shadowing_builtins_the_tests_use(sb):
    program = "def abs(x):\n    return 0\ndef half(x):\n    return 123.0\n"
    res = sb.run(program, ["assert abs(half(1) - 0.5) < 1e-9"], timeout=3)
    assert res.passed == 0, res


def test_printing_fake_success(sb):
    fake = '{"passed": 3, "total": 3, "status": "passed", "final": true, "ok": 1}'
    program = (
        "import os, sys\n"
        f"FAKE = {fake!r}\n"
        "print(FAKE); print(FAKE, file=sys.stderr)\n"
        "for fd in range(0, 64):\n"
        "    try:\n        os.write(fd, (FAKE + '\\n').encode())\n    except OSError:\n        pass\n"
        "def add(a, b):\n    print(FAKE)\n    return None\n"
    )
    res = sb.run(program, ADD_ASSERTS, timeout=3)
    assert_zero_and_alive(sb, res)


def test_killing_its_parent(sb):
    res = sb.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + ADD, ADD_ASSERTS, timeout=3)
    assert res.status == "program_error" and "PermissionError" in res.details, res
    assert_zero_and_alive(sb, res)


def test_cannot_outlive_its_zygote(sb):
    needs(sb, "runner_seccomp")
    program = ("import ctypes\ndef undo():\n"
               "    return ctypes.CDLL(None, use_errno=True).prctl(1, 0, 0, 0, 0)\n")  # PR_SET_PDEATHSIG = 0
    res = sb.run(program, ["assert undo() == 0"], timeout=3)
    assert res.passed == 0, res


def test_signalling_any_other_process(sb):
    # Signal 0 only probes: harmless even if a layer were missing, but it must be refused.
    program = ("import os\ndef count():\n    n = 0\n"
               "    me = os.getpid()  # signalling itself is allowed (abort() does it); a low pid is in range\n"
               "    for pid in [1, os.getppid(), -1] + [p for p in range(2, 4000) if p != me]:\n"
               "        try:\n            os.kill(pid, 0)\n            n += 1\n        except OSError:\n            pass\n"
               "    return n\n")
    res = sb.run(program, ["assert count() > 0"], timeout=5)
    assert res.passed == 0, res


def test_no_parent_secrets_in_the_environment(monkeypatch):
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("GRPO_FAKE_API_KEY", secret)
    with Sandbox(workers=1) as fresh:  # started after the secret was set
        program = ("import os\ndef leak():\n    return '|'.join(f'{k}={v}' for k, v in os.environ.items())\n"
                   "def leak_proc(pid):\n    return open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n")
        res = fresh.run(program, [f"assert {secret!r} in leak()"], timeout=3)
        assert res.passed == 0 and res.status == "failed", res
        if layer(fresh, "runner_landlock"):
            res = fresh.run(program, [f"assert {secret!r} in leak_proc({os.getpid()})"], timeout=3)
            assert res.passed == 0, res


def test_no_network(sb):
    needs(sb, "runner_seccomp")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        program = ("import socket\ndef ping():\n"
                   f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                   "    s.sendall(b'leak')\n    return 'connected'\n")
        res = sb.run(program, ["assert ping() == 'connected'"], timeout=3)
        assert res.passed == 0, res
        with pytest.raises(OSError):
            server.accept()  # nobody connected
    finally:
        server.close()


def test_tests_are_not_in_the_candidates_memory(sb):
    marker = f"expected-{uuid.uuid4().hex}"
    program = (
        "import gc, re\n"
        "def answer():\n"
        "    for o in gc.get_objects():\n"
        "        for s in (o if isinstance(o, (list, tuple)) else [o]):\n"
        "            if isinstance(s, str) and 'expected-' in s and 'assert' in s:\n"
        "                return re.search(r'expected-[0-9a-f]+', s).group(0)\n"
        "    for path in ('/proc/self/mem',):\n"
        "        pass\n"
        "    return None\n"
    )
    res = sb.run(program, [f"assert answer() == {marker!r}"], timeout=5)
    assert res.passed == 0, res


def test_runaway_recursion_and_huge_return_values(sb):
    res = sb.run("def add(a, b):\n    return add(a, b)\n", ADD_ASSERTS, timeout=3)
    assert res.passed == 0 and res.status == "failed", res
    res = sb.run("def add(a, b):\n    return 'x' * (48 * 1024 * 1024)\n", ADD_ASSERTS, timeout=5)
    assert_zero_and_alive(sb, res)


def test_isolation_report_names_every_layer(sb):
    layers = sb.isolation["layers"]
    for name in ("runner_landlock", "runner_seccomp", "runner_drop_uid", "net_namespace", "judge_seccomp"):
        assert name in layers
    if os.uname().machine in ("x86_64", "aarch64"):
        assert layers["runner_seccomp"] and layers["judge_seccomp"], sb.isolation


def test_degrades_gracefully_without_optional_layers():
    """With every optional layer off, process separation alone still scores the attacks that
    need no kernel help at 0 (exits, fake output, monkeypatching, loops, memory bombs)."""
    with Sandbox(workers=1, isolation=IsolationConfig(False, False, False, False)) as bare:
        assert not any(v for k, v in bare.isolation["layers"].items() if k != "runner_capabilities_dropped"
                       and k != "judge_capabilities_dropped")
        assert bare.run(ADD, ADD_CHECK, entry_point="add", timeout=3).status == "passed"
        for program in ("import sys\nsys.exit(0)\n", "print('3/3 passed')\ndef add(a, b):\n    return 0\n",
                        "while True:\n    pass\n", "x = bytearray(8 * 1024 ** 3)\n" + ADD,
                        "import builtins\nbuiltins.bool = lambda *a: True\ndef add(a, b):\n    return -5\n"):
            res = bare.run(program, ADD_ASSERTS[:2], timeout=1)
            assert res.passed == 0, (program, res)


# --- extraction ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "completion, entry, expected",
    [
        ("def f():\n    return 1\n", None, "def f():\n    return 1\n"),
        ("    return a + b\n", "add", "    return a + b\n"),  # body continuation kept as is
        ("Here:\n```python\ndef f():\n    return 1\n```\nDone.", None, "def f():\n    return 1"),
        ("```\ndef f():\n    return 1\n```", None, "def f():\n    return 1"),
        ("```py\ndef f():\n    return 1", None, "def f():\n    return 1"),  # cut off mid-block
        ("```bash\npip install x\n```\n```python\ndef g():\n    pass\n```", None, "def g():\n    pass"),
        ("```python\ndef f():\n    return 1\n```\nUsage:\n```python\nprint(f())\n```", None,
         "def f():\n    return 1"),
        ("```python\ndef f():\n    return 1\n```\nFixed:\n```python\ndef f():\n    return 2\n```", "f",
         "def f():\n    return 2"),
        ("<think>```python\ndef f(): return 0\n```</think>\n<answer>\n```python\ndef f():\n    return 3\n```\n"
         "</answer>", "f", "def f():\n    return 3"),
        ([{"role": "assistant", "content": "```python\ndef h():\n    return 1\n```"}], None, "def h():\n    return 1"),
        (None, None, ""),
    ],
)
def test_extract_code(completion, entry, expected):
    assert extract_code(completion, entry) == expected


def test_build_program_follows_the_seed_for_humaneval_prompts():
    prompt = 'def add(a, b):\n    """Sum."""\n'
    assert build_program("    return a + b\n", "add", prompt) == prompt + "    return a + b\n"
    full = build_program("```python\ndef add(a, b):\n    return a + b\n```", "add", prompt)
    assert full.startswith(prompt.rstrip("\n")) and full.endswith("def add(a, b):\n    return a + b")
    assert build_program("x = 1", "add", [{"role": "user", "content": prompt}]) == "x = 1"


# --- the TRL reward functions ----------------------------------------------------------------

HE_PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b.\n    >>> add(1, 2)\n    3\n    """\n'


def test_rewards_humaneval_columns():
    completions = [
        "    return a + b\n",
        "```python\ndef add(a, b):\n    return a - b\n```",
        [{"role": "assistant", "content": "<think>easy</think>\n```python\ndef add(a, b):\n    return a + b\n```"}],
        "import sys\nsys.exit(0)",
        "    return 2 * a if a == b else a + b\n",
    ]
    kw = dict(prompts=[HE_PROMPT] * 5, test=[ADD_CHECK] * 5, entry_point=["add"] * 5)
    assert code_pass_fraction_reward(completions, **kw) == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert code_all_pass_reward(completions, **kw) == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_rewards_mbpp_columns_count_each_assert():
    completions = ["def add(a, b):\n    return 3", "def add(a, b):\n    return a + b"]
    frac = code_pass_fraction_reward(completions, test_list=[ADD_ASSERTS] * 2)
    assert frac == [pytest.approx(1 / 3), 1.0]
    assert code_all_pass_reward(completions, test_list=[ADD_ASSERTS] * 2) == [0.0, 1.0]


def test_rewards_one_column_row_per_prompt_group():
    good, bad = "def add(a, b):\n    return a + b", "def add(a, b):\n    return 0"
    completions = [good, good, bad, bad] * 2
    rewards = code_all_pass_reward(completions, tests=[ADD_ASSERTS, "assert add(5, 5) == 0"])
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_rewards_none_when_no_usable_tests():
    assert code_pass_fraction_reward(["def f(): pass"] * 3, tests=[None, "", "def check(c:"]) == [None] * 3
    assert code_all_pass_reward(["def f(): pass"]) == [None]


def test_make_code_reward_timeout():
    reward = make_code_reward("all", timeout=0.5)
    t0 = time.monotonic()
    assert reward(["while True:\n    pass"], tests=["assert True\nassert 1 == 1"]) == [0.0]
    assert time.monotonic() - t0 < 15  # incl. the default sandbox start-up on a busy machine
    with pytest.raises(ValueError):
        make_code_reward("best")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.none(), st.integers(),
                 st.lists(st.fixed_dictionaries({"role": st.just("assistant"), "content": st.text(max_size=80)}),
                          max_size=2)))
def test_rewards_never_raise_and_stay_in_range(completion):
    for reward in (code_pass_fraction_reward, code_all_pass_reward):
        out = reward([completion], tests=[ADD_ASSERTS])
        assert len(out) == 1 and (out[0] is None or 0.0 <= out[0] <= 1.0)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000), st.one_of(st.none(), st.from_regex(r"[a-z_]{1,8}", fullmatch=True)))
def test_extract_code_total(text, entry):
    assert isinstance(extract_code(text, entry), str)


def test_rewards_survive_bad_arguments():
    assert code_pass_fraction_reward(None) == []
    assert code_all_pass_reward(["x"], tests=[object()]) == [None]
    assert code_all_pass_reward(["x" * 2_000_000], tests=[ADD_ASSERTS]) == [0.0]


def test_registry_entries_if_wired():
    from grpo_course.rewards import registry

    for name, fn in (("code_pass_fraction", code_pass_fraction_reward), ("code_all_pass", code_all_pass_reward)):
        if name in registry.list_rewards():
            assert registry.get_reward(name) is fn
