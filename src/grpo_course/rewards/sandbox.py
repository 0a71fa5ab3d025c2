"""Run untrusted candidate programs against unit tests: a pool of pre-started sandbox processes.

How a check runs (``Sandbox.run``):

1. The pool has one *slot* per worker. A slot is two processes started once with
   ``python -I -B`` and a clean environment (no variable of yours, so no API key), importing
   only the standard library: a **zygote**, which sets up what isolation the machine allows and
   forks one fresh **runner** per check, and a **judge server**, which sandboxes itself once
   and runs test code.
2. Per check, the parent creates two pipes and hands their ends over with SCM_RIGHTS: the
   program goes to the zygote, the tests go to the judge. The runner executes the program and
   then answers "call ``f`` with these arguments" requests; the judge executes the tests with
   every name the program defines replaced by a proxy that sends such a request. Values cross
   as plain data only (numbers, strings, bytes, lists, tuples, dicts, sets, Counter, deque,
   Fraction, Decimal, range, iterators); anything else arrives as an opaque handle that equals
   only itself, has no truth value and cannot be ordered (a returned function stays callable).
3. The judge counts each non-constant ``assert`` statement (inside ``check(candidate)`` for
   HumanEval-style tests, at top level for MBPP-style assert lists, inside ``test_*``
   functions) and replies with the verdict over its own socket. The zygote kills the runner at
   the deadline, removes its directory and reports how it ended; the parent combines both.

Why the verdict cannot be forged: the candidate never shares a process with the test code or
with any channel to the parent. Its stdout goes to /dev/null; exiting, crashing, or
monkeypatching builtins, ``assert``, ``check`` or its own side of the protocol only affects its
own process (the judge then sees garbage or silence and fails the tests). The tests never
enter its memory: they go from the parent straight to the judge, and the zygote that forks the
runner never receives them, so the expected values cannot be read either.

Known limits of the proxy: arguments are copies, so a test that checks in-place mutation of an
argument fails; functions cannot be passed *to* the candidate; a program's names that shadow a
builtin (``def abs``) are not proxied, so tests keep the real builtin.

Isolation layers (``Sandbox.isolation`` reports which are active on this machine):

* always: one fresh runner process per check in its own session, with ``RLIMIT_CPU`` (soft
  ``int(timeout) + 1`` s -> SIGXCPU, hard one second later -> SIGKILL), ``RLIMIT_AS``
  (``memory_mb``, default 512), ``RLIMIT_NPROC`` = 1 (the kernel ignores it for root, hence
  drop_uid), ``RLIMIT_FSIZE`` 16 MB, 64 open files, no core dumps; SIGKILL at the wall-clock
  ``timeout``; its own temporary directory as cwd/HOME/TMPDIR, deleted afterwards; a minimal
  environment; no capabilities; not dumpable (so no ``/proc`` or ptrace access to it); killed
  with its zygote (PDEATHSIG). The judge server is not dumpable and has no capabilities either.
* **seccomp** (x86_64 and aarch64): no fork/vfork/clone of processes (threads are allowed),
  no exec, no ``socket()``, no io_uring, no ptrace or process_vm_*, no signals or rlimit
  changes aimed at other processes, no mount/namespace/keyring/module/clock/reboot calls.
  Applied to runners and to the judge.
* **Landlock** (Linux >= 5.13 with Landlock enabled): the runner reads only the Python
  installation and system library paths and writes only its own directory (and /dev/null);
  the judge writes nothing. From ABI 4 no TCP bind/connect, from ABI 6 no signals to processes
  outside the sandbox and no abstract Unix sockets. This is what stops reading
  ``/proc/<pid>/environ`` of your other processes and touching files outside the work directory.
* **namespaces** (root, or unprivileged user namespaces): the zygote and its runners live in a
  new network namespace (no interface is up), new IPC and UTS namespaces, and a mount namespace
  in which work directories sit on a tmpfs capped at ``tmpfs_mb`` (256 MB) per zygote.
* **drop_uid** (when running as root): the runner switches to a random unused uid, so file
  permissions, signals and ``RLIMIT_NPROC`` apply to it; the judge keeps root's uid but drops
  every capability. The runner can then import only modules that the zygote pre-imported (the
  standard-library list in ``_sandbox_worker.PRELOAD``) if your interpreter sits in a directory
  other users cannot read (e.g. pyenv under ``/root``).

What is *not* guaranteed: this is not a VM or gVisor; a kernel bug reachable through the
allowed syscalls escapes it. Without Landlock and without root, the runner runs as your user
and can read and write whatever your user can (including ``/proc/<pid>/environ`` of your other
processes): keep secrets out of such machines or run in a container. Without the tmpfs a
program can fill the disk with 16 MB files until its timeout. Without seccomp (other
architectures) the runner may open sockets unless the network namespace is active. A program
can still game weak tests (return the expected value for the visible inputs) or redefine helper
functions that the tests call (HumanEval/32 calls the prompt's ``poly``): the sandbox makes the
*verdict* honest for the tests given, not the tests strong.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grpo_course.distributed import cores_per_process

WORKER = Path(__file__).with_name("_sandbox_worker.py")
STARTUP_TIMEOUT = 30.0
GRACE = 3.0  # seconds the parent waits beyond a job's timeout before it kills the zygote

# Statuses. "invalid_tests" and "unavailable" mean the check could not be made (reward None).
PASSED, FAILED, ERROR, PROGRAM_ERROR = "passed", "failed", "error", "program_error"
TIMEOUT, CRASHED, INVALID_TESTS, UNAVAILABLE = "timeout", "crashed", "invalid_tests", "unavailable"
SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class TestResult:
    """Outcome of one program against one test suite.

    ``passed``/``total`` count assert statements (each counted once, however often a loop runs
    it: it passes if it ran at least once and never failed). Tests without any assert count as
    one test that passes when they finish. ``status`` is one of ``passed`` (every assert
    passed), ``failed``, ``error`` (the tests stopped on an exception outside an assert),
    ``program_error`` (the program raised or exited while loading), ``timeout``, ``crashed``
    (the program's process died), ``sandbox_error``, ``invalid_tests`` or ``unavailable`` (no
    verdict possible). ``details`` says why, for people; never parse it."""

    __test__ = False  # not a pytest class

    passed: int
    total: int
    status: str
    details: str = ""
    elapsed: float = 0.0

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total > 0 else 0.0

    @property
    def all_passed(self) -> bool:
        return self.status == PASSED and self.total > 0 and self.passed == self.total

    @property
    def scorable(self) -> bool:
        """False when no verdict could be made (bad tests, sandbox unavailable): reward None."""
        return self.status not in (INVALID_TESTS, UNAVAILABLE)


@dataclass
class IsolationConfig:
    """Which layers to try ("use when available"); turning one off is for tests and debugging."""

    namespaces: bool = True
    landlock: bool = True
    seccomp: bool = True
    drop_privileges: bool = True
    tmpfs_mb: int = 256


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _frame(obj) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


class SandboxUnavailable(RuntimeError):
    """The zygote could not be started on this machine."""


class _Server:
    """One server process (``zygote`` or ``judge``) and the socket to it."""

    def __init__(self, role: str, cfg: IsolationConfig):
        self.role, self.cfg = role, cfg
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.base: str | None = None
        self.hello: dict = {}
        self.buf = bytearray()
        self.owner = os.getpid()

    def alive(self) -> bool:
        return self.proc is not None and self.owner == os.getpid() and self.proc.poll() is None

    def start(self) -> None:
        self.kill()
        self.owner = os.getpid()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.base = tempfile.mkdtemp(prefix=f"grpo-sandbox-{self.role}-")
        os.chmod(self.base, 0o711)
        cfg = {"namespaces": self.cfg.namespaces, "landlock": self.cfg.landlock, "seccomp": self.cfg.seccomp,
               "drop_privileges": self.cfg.drop_privileges, "tmpfs_mb": self.cfg.tmpfs_mb}
        argv = [sys.executable, "-I", "-B", str(WORKER), self.role, str(child.fileno()), json.dumps(cfg)]
        if self.role == "zygote":
            argv.append(self.base)
        try:
            self.proc = subprocess.Popen(
                argv, pass_fds=[child.fileno()], env=_clean_env(self.base), cwd=self.base,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                close_fds=True, start_new_session=True)
        finally:
            child.close()
        self.sock = parent
        self.buf = bytearray()
        try:
            hello = self.recv(time.monotonic() + STARTUP_TIMEOUT)
        except (OSError, EOFError, ValueError, TimeoutError) as exc:
            self.kill()
            raise SandboxUnavailable(f"sandbox {self.role} did not start: {exc}") from None
        if not hello.get("hello"):
            self.kill()
            raise SandboxUnavailable(f"sandbox {self.role} failed: {hello.get('error')}")
        self.hello = hello

    def kill(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.owner != os.getpid():  # a forked copy of the parent: these processes are not ours
            self.proc, self.base = None, None
            return
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def send(self, obj, fds: list[int]) -> None:
        socket.send_fds(self.sock, [_frame(obj)], fds)

    def feed(self) -> dict | None:
        """Read what is available; return a whole reply once one has arrived."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError(f"the sandbox {self.role} closed its connection")
        self.buf += chunk
        if len(self.buf) >= 4:
            n = struct.unpack(">I", self.buf[:4])[0]
            if len(self.buf) >= 4 + n:
                reply = json.loads(bytes(self.buf[4:4 + n]))
                del self.buf[:4 + n]
                return reply
        return None

    def recv(self, deadline: float) -> dict:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from the sandbox {self.role}")
            if poller.poll(left * 1000):
                reply = self.feed()
                if reply is not None:
                    return reply


class _Slot:
    """A zygote (forks runners; never sees tests) and a judge server (runs tests; never forks)."""

    def __init__(self, cfg: IsolationConfig):
        self.zygote = _Server("zygote", cfg)
        self.judge = _Server("judge", cfg)

    def ensure(self) -> None:
        for server in (self.zygote, self.judge):
            if not server.alive():
                server.start()

    def kill(self) -> None:
        self.zygote.kill()
        self.judge.kill()

    def run(self, job: dict, tests: str, timeout: float) -> TestResult:
        t0 = time.monotonic()
        c2r_r, c2r_w = os.pipe()  # judge -> runner
        r2c_r, r2c_w = os.pipe()  # runner -> judge
        try:
            self.zygote.send(job, [c2r_r, r2c_w])
            self.judge.send({"id": job["id"], "tests": tests, "entry_point": job.get("entry_point")},
                            [r2c_r, c2r_w])
        finally:
            for fd in (c2r_r, c2r_w, r2c_r, r2c_w):
                os.close(fd)
        replies: dict[str, dict] = {}
        servers = {self.zygote.sock.fileno(): self.zygote, self.judge.sock.fileno(): self.judge}
        poller = select.poll()
        for fd in servers:
            poller.register(fd, select.POLLIN)
        deadline = t0 + timeout + GRACE
        while len(replies) < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                # Only the judge can be stuck here (trusted tests looping on their own): restart both.
                self.kill()
                return TestResult(0, 0, TIMEOUT, "the tests themselves did not finish", time.monotonic() - t0)
            for fd, _ev in poller.poll(left * 1000):
                server = servers[fd]
                try:
                    reply = server.feed()
                except (EOFError, OSError, ValueError) as exc:
                    self.kill()
                    status = CRASHED if server.role == "zygote" else SANDBOX_ERROR
                    return TestResult(0, 0, status, f"{exc}", time.monotonic() - t0)
                if reply is not None:
                    replies[server.role] = reply
                    poller.unregister(fd)
        return _combine(replies["judge"], replies["zygote"], time.monotonic() - t0)


def _combine(verdict: dict, runner: dict, elapsed: float) -> TestResult:
    if verdict.get("error") or runner.get("error"):
        return TestResult(0, 0, SANDBOX_ERROR, str(verdict.get("error") or runner.get("error")), elapsed)
    passed, total = int(verdict.get("passed", 0)), int(verdict.get("total", 0))
    status, details = str(verdict.get("status")), str(verdict.get("details", ""))
    if status in (CRASHED, ERROR, FAILED) and runner.get("timed_out"):
        status, details = TIMEOUT, "wall-clock limit reached"
    elif status == CRASHED and runner.get("runner") in ("signal 24", "signal 9"):  # SIGXCPU / hard CPU limit
        status, details = TIMEOUT, f"CPU-time limit reached ({runner.get('runner')})"
    elif status == CRASHED and runner.get("runner") == "exit 97":
        status, details = SANDBOX_ERROR, "an isolation layer failed to apply in the runner"
    return TestResult(passed, total, status, details, elapsed)


class Sandbox:
    """A pool of zygotes. Thread-safe: any number of threads may call :meth:`run` at once; each
    check borrows one zygote, so at most ``workers`` checks run in parallel.

    >>> with Sandbox(workers=2) as sb:
    ...     sb.run("def add(a, b):\\n    return a + b", "assert add(1, 2) == 3").status
    'passed'
    """

    def __init__(self, workers: int | None = None, *, memory_mb: int = 512,
                 isolation: IsolationConfig | None = None):
        # Default: this process's share of the cores, so N training ranks on one machine start N x (cores / N)
        # zygotes in total, not N x cores (grpo_course.distributed.cores_per_process).
        self.workers = max(1, int(workers or cores_per_process()))
        self.memory_mb = int(memory_mb)
        self.cfg = isolation or IsolationConfig()
        self._idle: queue.LifoQueue[_Slot] = queue.LifoQueue()
        for _ in range(self.workers):
            self._idle.put(_Slot(self.cfg))
        self._all = list(self._idle.queue)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._closed = False
        self._ids = 0
        self._report: dict | None = None
        self._finalizer = weakref.finalize(self, Sandbox._shutdown, self._all)

    # --- lifecycle ---
    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None
        self._finalizer()

    @staticmethod
    def _shutdown(slots: list[_Slot]) -> None:
        for z in slots:
            try:
                z.kill()
            except Exception:
                pass

    # --- information ---
    @property
    def isolation(self) -> dict:
        """What this machine gives: layer -> True/False, plus the raw probe report."""
        if self._report is None:
            z = self._borrow()
            try:
                z.ensure()
                hello, judge = z.zygote.hello, z.judge.hello
            finally:
                self._idle.put(z)
            layers = {f"runner_{k}": v for k, v in hello.get("layers", {}).items()}
            ns = hello.get("report", {}).get("namespaces", {})
            layers["net_namespace"] = bool(ns.get("net_ns"))
            layers["tmpfs"] = bool(ns.get("tmpfs"))
            for k, v in judge.get("report", {}).get("judge_layers", {}).items():
                layers[f"judge_{k}"] = v is True
            self._report = {"layers": layers, "runner": hello.get("report", {}),
                            "judge": judge.get("report", {})}
        return self._report

    # --- checks ---
    def _borrow(self) -> _Slot:
        if self._closed:
            raise RuntimeError("this Sandbox is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("a Sandbox cannot be used from a forked copy of its process; make a new one")
        return self._idle.get()

    def run(self, program: str, tests: str | list[str], entry_point: str | None = None,
            timeout: float = 5.0) -> TestResult:
        """Run ``tests`` (HumanEval-style code with ``check(candidate)``, a list or block of
        ``assert`` statements, or ``test_*`` functions) against ``program``. Never raises for
        bad programs; returns ``status="unavailable"`` if no zygote can start here."""
        if isinstance(tests, (list, tuple)):
            tests = "\n".join(str(t) for t in tests)
        if not isinstance(program, str) or not isinstance(tests, str):
            return TestResult(0, 0, INVALID_TESTS, "program and tests must be text")
        timeout = float(timeout)
        if not timeout > 0:
            return TestResult(0, 0, INVALID_TESTS, "timeout must be positive")
        with self._lock:
            self._ids += 1
            job_id = self._ids
        job = {"id": job_id, "program": program, "entry_point": entry_point or None,
               "timeout": timeout, "memory_mb": self.memory_mb}
        z = self._borrow()
        try:
            try:
                z.ensure()
            except (SandboxUnavailable, OSError) as exc:
                return TestResult(0, 0, UNAVAILABLE, str(exc))
            try:
                return z.run(job, tests, timeout)
            except (OSError, ValueError) as exc:
                z.kill()
                return TestResult(0, 0, SANDBOX_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            self._idle.put(z)

    def run_many(self, jobs: list[dict], timeout: float = 5.0) -> list[TestResult]:
        """Run many checks in parallel (each ``job`` is ``run``'s keyword arguments:
        ``program``, ``tests``, optional ``entry_point``/``timeout``). Order is kept."""
        if not jobs:
            return []
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="grpo-sandbox")
            executor = self._executor

        def one(job):
            try:
                return self.run(job["program"], job["tests"], job.get("entry_point"),
                                job.get("timeout", timeout))
            except Exception as exc:  # never let one check take the batch down
                return TestResult(0, 0, SANDBOX_ERROR, f"{type(exc).__name__}: {exc}")

        return list(executor.map(one, jobs))


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox used by :func:`run_tests` and the code rewards (created on first
    use, one zygote per CPU core this process may use, divided among the processes a launcher started
    on this machine; a forked child gets its own)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed or _default._pid != os.getpid():
            _default = Sandbox()
        return _default


def run_tests(program: str, tests: str | list[str], timeout: float = 5.0,
              entry_point: str | None = None) -> TestResult:
    """Run ``tests`` against ``program`` in the default sandbox (see :class:`Sandbox.run`)."""
    return default_sandbox().run(program, tests, entry_point=entry_point, timeout=timeout)


@atexit.register
def _close_default() -> None:
    if _default is not None:
        _default.close()


__all__ = ["IsolationConfig", "Sandbox", "SandboxUnavailable", "TestResult", "default_sandbox", "run_tests"]
