"""Run a function with a hard wall-clock limit that works in threads and in worker processes.

math-verify's own timeout uses ``signal.alarm``: it only works in the main thread of the main
interpreter, and from any other thread it raises ``ValueError`` (or, in web servers, silently
returns False). Sources: Math-Verify 0.8.0 (github.com/huggingface/Math-Verify), ``src/math_verify/utils.py``
(the signal-based timeout) and the ``parse``/``verify`` docstrings (a timeout in a threaded environment raises
``ValueError``); its issues #50 (threads in a GRPO trainer; the maintainer's advice: pass ``None`` timeouts and
enforce one yourself) and #11 (FastAPI: verify silently returns False); huggingface/trl PR #5281 (TRL turns
the timeouts off outside the main thread).

Here the call runs in a persistent child process started with :mod:`subprocess` (not
:mod:`multiprocessing`: that needs a ``__main__`` guard with "spawn" and is forbidden inside
daemonic pool workers). The parent waits on a pipe with ``select``; when the limit passes it
kills the child and starts a fresh one on the next call. So a call returns within ``timeout``
seconds whatever runs inside it (a power tower in SymPy, an infinite loop), from any thread, any
process, any event loop. One child per parent process, calls are serialised by a lock; a forked
copy of the parent gets its own child (the inherited one is left alone).

POSIX only (Linux, macOS, Colab): the parent waits with ``select`` on a pipe, which Windows does not
support; there a call fails with :class:`CallFailed` and the math rewards treat it as "not equal".

Cost: the first call of a process starts the child (about 1-2 s to import SymPy and
math-verify); later calls cost one pipe round trip (~0.1 ms) plus the work itself. After a
timeout the next call pays the start-up again.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any

STARTUP_TIMEOUT = 60.0
# Address-space limit for the child (bytes): a memory bomb in SymPy dies instead of the machine.
CHILD_MEMORY_LIMIT = 3 * 1024**3


class CallTimeout(Exception):
    """The call did not finish within its time limit (the child was killed)."""


class CallFailed(Exception):
    """The call raised inside the child, or the child died; the message says which."""


def _resolve(path: str):
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _write_msg(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    payload = struct.pack("<Q", len(data)) + data
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, remaining = [], n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise CallTimeout
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("worker closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_msg(fd: int, deadline: float | None) -> Any:
    (size,) = struct.unpack("<Q", _read_exact(fd, 8, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


class Worker:
    """One persistent child process executing ``"module:function"`` calls with a time limit."""

    def __init__(self, preload: tuple[str, ...] = ()):
        self.preload = tuple(preload)
        self._proc: subprocess.Popen | None = None
        self._owner_pid: int | None = None
        self._lock = threading.Lock()
        self._ready = False
        self.starts = 0  # how many children this worker has started (1 + number of kills)

    def _spawn(self) -> None:
        """Start a child without waiting for it (it imports its preloads in the background)."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "TMPDIR")}
        # The child imports what the parent can (e.g. a checkout put on sys.path by hand, as on Colab).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env["PYTHONHASHSEED"] = "0"
        env["OMP_NUM_THREADS"] = "1"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "grpo_course.rewards.timeout", str(CHILD_MEMORY_LIMIT), *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self._owner_pid = os.getpid()
        self._ready = False
        self.starts += 1

    def _ensure_ready(self) -> None:
        if self._proc is not None and self._owner_pid != os.getpid():
            self._proc = None  # inherited through fork: the parent process owns that child
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._spawn()
        if not self._ready:
            ready = _read_msg(self._proc.stdout.fileno(), time.monotonic() + STARTUP_TIMEOUT)
            if ready != "ready":
                raise CallFailed(f"worker failed to start: {ready!r}")
            self._ready = True

    def warm_up(self, wait: bool = False) -> None:
        """Start the child now (in the background unless ``wait``), so the first call is fast."""
        with self._lock:
            try:
                if wait:
                    self._ensure_ready()
                elif self._proc is None or self._owner_pid != os.getpid() or self._proc.poll() is not None:
                    self._kill()
                    self._spawn()
            except Exception:  # noqa: BLE001 - the next call reports the problem
                self._kill()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._owner_pid == os.getpid():
            try:
                proc.kill()
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - best effort clean-up
                pass
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass

    def close(self) -> None:
        with self._lock:
            self._kill()

    def call(self, path: str, args: tuple = (), timeout: float = 2.0) -> Any:
        """Run ``path(*args)`` in the child; raise :class:`CallTimeout` after ``timeout`` seconds,
        :class:`CallFailed` if it raised or the child died. The child is reused between calls; after
        a timeout a replacement starts at once, in the background."""
        with self._lock:
            try:
                self._ensure_ready()
            except BaseException as exc:
                self._kill()
                raise CallFailed(f"could not start the worker: {exc!r}") from None
            try:
                _write_msg(self._proc.stdin.fileno(), (path, args))
                ok, value = _read_msg(self._proc.stdout.fileno(), time.monotonic() + timeout)
            except CallTimeout:
                self._kill()
                try:
                    self._spawn()
                except Exception:  # noqa: BLE001 - the next call retries
                    self._kill()
                raise
            except BaseException as exc:
                self._kill()
                raise CallFailed(f"worker died: {exc!r}") from None
            if not ok:
                raise CallFailed(value)
            return value


_default_worker: Worker | None = None
_default_lock = threading.Lock()


def default_worker() -> Worker:
    """The process-wide worker used by the math rewards (math-verify preloaded)."""
    global _default_worker
    with _default_lock:
        if _default_worker is None:
            _default_worker = Worker(preload=("grpo_course.rewards._mathverify",))
        return _default_worker


def call_with_timeout(path: str, args: tuple = (), timeout: float = 2.0) -> Any:
    """``path(*args)`` (``"module:function"``) in the shared worker, within ``timeout`` seconds."""
    return default_worker().call(path, args, timeout)


@atexit.register
def _shutdown() -> None:
    if _default_worker is not None:
        _default_worker.close()


def _serve(memory_limit: int, preload: list[str]) -> None:
    """Child side: answer (path, args) requests on stdin with (ok, value) on stdout, forever."""
    in_fd = sys.stdin.fileno()
    out_fd = os.dup(sys.stdout.fileno())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints (a library's or the callee's) cannot corrupt the protocol
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except Exception:  # noqa: BLE001 - not available on every platform
        pass
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the call itself will report it
            pass
    _write_msg(out_fd, "ready")
    while True:
        try:
            path, args = _read_msg(in_fd, None)
        except (EOFError, OSError):
            return
        try:
            result = (True, _resolve(path)(*args))
        except BaseException as exc:  # noqa: BLE001 - report everything, incl. BaseException subclasses
            result = (False, f"{type(exc).__name__}: {exc}"[:500])
        try:
            _write_msg(out_fd, result)
        except (OSError, pickle.PicklingError):
            _write_msg(out_fd, (False, "unpicklable result"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
