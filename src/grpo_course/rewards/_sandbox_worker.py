"""The code sandbox's server processes (stdlib only; started by :mod:`grpo_course.rewards.sandbox`).

``python -I -B _sandbox_worker.py zygote CTRL_FD CONFIG_JSON BASE_DIR`` starts a **zygote**:
it sets up what isolation the machine allows once (network/IPC/UTS/mount namespaces, a
size-capped tmpfs for work directories), pre-imports common standard-library modules, probes
which per-process layers work, then forks one fresh **runner** per job. The runner applies
rlimits, Landlock, a dropped uid and seccomp to itself, executes the candidate program and then
answers "call ``f`` with these arguments" requests. It is untrusted: whatever it sends back is
decoded as plain data. The zygote never receives any test, so no runner can find tests in the
memory it inherits.

``python -I -B _sandbox_worker.py judge CTRL_FD CONFIG_JSON`` starts a **judge server**: it
sandboxes itself once (read-only Landlock, no capabilities, seccomp) and then, per job, runs the
trusted tests with each name the program defines replaced by a proxy that calls into that job's
runner over two pipes, counts assert statements and replies with the verdict over its own
control socket, which the runner has no way to reach.

The parent passes both ends of a job's pipes with SCM_RIGHTS; ``sandbox.py`` says what each
isolation layer guarantees.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import errno
import fcntl
import json
import os
import platform
import resource
import select
import signal
import socket
import struct
import sys
import time

# Pre-imported so that candidates and tests find them in ``sys.modules`` after the fork (the
# runner may not be able to read the interpreter's files once it has dropped its uid) and so
# that an import costs nothing per job. Standard library only.
PRELOAD = (
    "abc array base64 binascii bisect calendar cmath collections collections.abc copy csv dataclasses "
    "datetime decimal difflib enum fractions functools hashlib heapq io itertools keyword math numbers "
    "operator pprint queue random re statistics string struct textwrap time typing unicodedata "
    "zlib contextlib types weakref"
).split()

MAX_FRAME = 32 * 1024 * 1024  # largest message between judge and runner (bytes)
MAX_NAMES = 10_000
DETAILS_CHARS = 400

# ---------------------------------------------------------------------------------------------
# Linux primitives through ctypes (no third-party packages)
# ---------------------------------------------------------------------------------------------

LINUX = platform.system() == "Linux"
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
if LINUX:
    _libc.prctl.restype = ctypes.c_int
    _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000


class SetupError(Exception):
    pass


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {err})")
    return ret


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if not LINUX:
        raise SetupError("prctl is Linux-only")
    _check(_libc.prctl(option, arg2, arg3, 0, 0), f"prctl({option})")


# --- seccomp-bpf ------------------------------------------------------------------------------
# Syscall numbers from the kernel's uapi headers (asm/unistd_64.h for x86_64, asm-generic/unistd.h
# for aarch64). On any other architecture the seccomp layer is reported unavailable.
_DENY_NAMES = (
    "fork vfork execve execveat ptrace process_vm_readv process_vm_writev pidfd_open pidfd_send_signal "
    "pidfd_getfd socket io_uring_setup io_uring_enter io_uring_register mount umount2 pivot_root chroot "
    "unshare setns bpf perf_event_open keyctl add_key request_key userfaultfd kexec_load kexec_file_load "
    "init_module finit_module delete_module reboot swapon swapoff acct settimeofday clock_settime adjtimex "
    "clock_adjtime open_by_handle_at name_to_handle_at open_tree move_mount fsopen fsconfig fsmount fspick "
    "mount_setattr syslog quotactl iopl ioperm move_pages migrate_pages"
).split()
_SYSCALLS = {
    "x86_64": dict(
        fork=57, vfork=58, clone=56, clone3=435, execve=59, execveat=322, kill=62, tkill=200, tgkill=234,
        pidfd_open=434, pidfd_send_signal=424, pidfd_getfd=438, ptrace=101, process_vm_readv=310,
        process_vm_writev=311, socket=41, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
        mount=165, umount2=166, pivot_root=155, chroot=161, unshare=272, setns=308, bpf=321,
        perf_event_open=298, keyctl=250, add_key=248, request_key=249, userfaultfd=323, kexec_load=246,
        kexec_file_load=320, init_module=175, finit_module=313, delete_module=176, reboot=169, swapon=167,
        swapoff=168, acct=163, settimeofday=164, clock_settime=227, adjtimex=159, clock_adjtime=305,
        prlimit64=302, prctl=157, open_by_handle_at=304, name_to_handle_at=303, open_tree=428, move_mount=429,
        fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, syslog=103, quotactl=179,
        iopl=172, ioperm=173, move_pages=279, migrate_pages=256,
    ),
    "aarch64": dict(
        clone=220, clone3=435, execve=221, execveat=281, kill=129, tkill=130, tgkill=131, pidfd_open=434,
        pidfd_send_signal=424, pidfd_getfd=438, ptrace=117, process_vm_readv=270, process_vm_writev=271,
        socket=198, io_uring_setup=425, io_uring_enter=426, io_uring_register=427, mount=40, umount2=39,
        pivot_root=41, chroot=51, unshare=97, setns=268, bpf=280, perf_event_open=241, keyctl=219,
        add_key=217, request_key=218, userfaultfd=282, kexec_load=104, kexec_file_load=294,
        init_module=105, finit_module=273, delete_module=106, reboot=142, swapon=224, swapoff=225, acct=89,
        settimeofday=170, clock_settime=112, adjtimex=171, clock_adjtime=266, prlimit64=261, prctl=167,
        open_by_handle_at=265, name_to_handle_at=264, open_tree=428, move_mount=429, fsopen=430,
        fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, syslog=116, quotactl=60, move_pages=239,
        migrate_pages=238,
    ),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data; low word of args[0] (little endian)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_program(pid: int, machine: str | None = None) -> bytes:
    """A classic-BPF filter: no new processes (threads are allowed), no exec, no sockets, no
    signals or rlimit changes aimed at any other process, no ptrace / process_vm_*, no io_uring
    (it bypasses seccomp), no mount/namespace/keyring/module/clock/reboot calls, and no
    un-setting of the parent-death signal. Denied calls
    fail with EPERM (clone3 with ENOSYS so that glibc falls back to clone for threads); a foreign
    syscall ABI (x32, i386) kills the process."""
    machine = machine or platform.machine()
    nrs = _SYSCALLS[machine]
    ins: list[tuple[int, int, int, int]] = []

    def op(code, k, jt=0, jf=0):
        ins.append((code, jt, jf, k))

    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    op(_LD_W_ABS, _OFF_ARCH)
    op(_JEQ, _AUDIT_ARCH[machine], 1, 0)
    op(_RET, _RET_KILL_PROCESS)
    op(_LD_W_ABS, _OFF_NR)
    if machine == "x86_64":
        op(_JGE, 0x40000000, 0, 1)  # the x32 ABI would dodge the numbers below
        op(_RET, _RET_KILL_PROCESS)
    for name in _DENY_NAMES:
        if name in nrs:
            op(_JEQ, nrs[name], 0, 1)
            op(_RET, eperm)
    op(_JEQ, nrs["clone3"], 0, 1)
    op(_RET, enosys)
    # clone: only threads (CLONE_THREAD set) are allowed.
    op(_JEQ, nrs["clone"], 0, 4)
    op(_LD_W_ABS, _OFF_ARG0)
    op(_JSET, CLONE_THREAD, 0, 1)
    op(_RET, _RET_ALLOW)
    op(_RET, eperm)
    # kill(pid, sig) / prlimit64(pid, ...): only this process (or 0 = itself / its own group).
    for name in ("kill", "prlimit64"):
        op(_JEQ, nrs[name], 0, 5)
        op(_LD_W_ABS, _OFF_ARG0)
        op(_JEQ, pid, 2, 0)
        op(_JEQ, 0, 1, 0)
        op(_RET, eperm)
        op(_RET, _RET_ALLOW)
    # prctl(PR_SET_PDEATHSIG, ...): the kill-with-the-zygote set-up stays (no orphans).
    op(_JEQ, nrs["prctl"], 0, 4)
    op(_LD_W_ABS, _OFF_ARG0)
    op(_JEQ, PR_SET_PDEATHSIG, 0, 1)
    op(_RET, eperm)
    op(_RET, _RET_ALLOW)
    # tkill(tid, sig) / tgkill(tgid, tid, sig): only this process (abort() signals itself).
    for name in ("tkill", "tgkill"):
        op(_JEQ, nrs[name], 0, 4)
        op(_LD_W_ABS, _OFF_ARG0)
        op(_JEQ, pid, 1, 0)
        op(_RET, eperm)
        op(_RET, _RET_ALLOW)
    op(_RET, _RET_ALLOW)
    return b"".join(struct.pack("=HBBI", *i) for i in ins)


_PID_SLOT = 0xFFFFFFF0  # placeholder pid in the cached program
_SECCOMP_CACHE: dict[str, tuple[bytes, list[int]]] = {}


def _seccomp_for(pid: int) -> bytes:
    """``seccomp_program(pid)`` from a cached template (building it costs ~1 ms per child)."""
    machine = platform.machine()
    if machine not in _SECCOMP_CACHE:
        tpl = seccomp_program(_PID_SLOT, machine)
        slots = [i for i in range(0, len(tpl), 8) if struct.unpack_from("=I", tpl, i + 4)[0] == _PID_SLOT]
        _SECCOMP_CACHE[machine] = (tpl, slots)
    tpl, slots = _SECCOMP_CACHE[machine]
    buf = bytearray(tpl)
    for off in slots:
        struct.pack_into("=I", buf, off + 4, pid)
    return bytes(buf)


def install_seccomp() -> None:
    prog = _seccomp_for(os.getpid())
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p).value)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


# --- Landlock -----------------------------------------------------------------------------------
_LL_CREATE, _LL_ADD, _LL_RESTRICT = 444, 445, 446  # same numbers on every architecture
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_TRUNCATE, _FS_IOCTL_DEV, _FS_REFER = 1 << 14, 1 << 15, 1 << 13
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """Landlock ABI version of the running kernel, 0 when unavailable."""
    if not LINUX:
        return 0
    ret = _libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return int(ret) if ret > 0 else 0


def _fs_all(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def install_landlock(abi: int, read_paths: list[str], write_dirs: list[str], dev_files: list[str]) -> None:
    """Reads only beneath ``read_paths``, writes only beneath ``write_dirs`` (plus /dev/null),
    no exec anywhere; with ABI >= 4 no TCP bind/connect; with ABI >= 6 no signals to processes
    outside this domain and no abstract Unix sockets."""
    fs_all = _fs_all(abi)
    attr = _RulesetAttr(fs_all, 0, 0)
    size = 8
    if abi >= 4:
        attr.net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    fd = _check(_libc.syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)),
                "landlock_create_ruleset")
    file_rights = _FS_READ_FILE | _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    try:
        rules = [(p, _FS_READ_FILE | _FS_READ_DIR) for p in read_paths]
        rules += [(p, fs_all & ~_FS_EXECUTE) for p in write_dirs]
        rules += [(p, file_rights) for p in dev_files]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    rights &= _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
                rule = _PathBeneath(rights, pfd)
                _check(_libc.syscall(_LL_ADD, ctypes.c_int(fd), ctypes.c_int(1), ctypes.byref(rule),
                                     ctypes.c_uint32(0)), f"landlock_add_rule({path})")
            finally:
                os.close(pfd)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_libc.syscall(_LL_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(fd)


# --- capabilities, uids, namespaces ----------------------------------------------------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    hdr = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def drop_uid(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SetupError("setresuid did not take effect")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def setup_namespaces(base: str, tmpfs_mb: int) -> dict:
    """Once per zygote: new network (no interfaces up), IPC and UTS namespaces, and a mount
    namespace with a size-capped tmpfs on ``base``. Root does it directly; other users first
    enter a user namespace mapping only their own uid. Every step may fail (containers often
    forbid it): the report says what took effect."""
    rep = {"user_ns": False, "net_ns": False, "ipc_ns": False, "tmpfs": False}
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        # Try in a throwaway child first: a user namespace whose uid map cannot be written (e.g.
        # Ubuntu's AppArmor restriction) cannot be left again.
        pid = os.fork()
        if pid == 0:
            ok = _libc.unshare(CLONE_NEWUSER) == 0
            try:
                if ok:
                    _write("/proc/self/setgroups", "deny")
                    _write("/proc/self/gid_map", f"{gid} {gid} 1")
                    _write("/proc/self/uid_map", f"{uid} {uid} 1")
                    ok = _libc.unshare(CLONE_NEWNET) == 0
            except OSError:
                ok = False
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            rep["error"] = "unprivileged user namespaces are not usable here"
            return rep
        if _libc.unshare(CLONE_NEWUSER) != 0:
            rep["error"] = f"unshare(user): {os.strerror(ctypes.get_errno())}"
            return rep
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            rep["user_ns"] = True
        except OSError as exc:
            rep["error"] = f"user namespace maps: {exc}"
            return rep
    if _libc.unshare(CLONE_NEWNET) == 0:
        rep["net_ns"] = True
    else:
        rep["error"] = f"unshare(net): {os.strerror(ctypes.get_errno())}"
    if _libc.unshare(CLONE_NEWIPC | CLONE_NEWUTS) == 0:
        rep["ipc_ns"] = True
    if _libc.unshare(CLONE_NEWNS) == 0:
        if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            opts = f"size={int(tmpfs_mb)}m,mode=0711".encode()
            if _libc.mount(b"tmpfs", base.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts) == 0:
                rep["tmpfs"] = True
    return rep


def set_rlimits(cpu_s: int, memory_mb: int, nproc: int, fsize_mb: int = 16, nofile: int = 64) -> None:
    """All limits on Linux (an error is raised); best effort elsewhere (e.g. macOS refuses RLIMIT_AS)."""
    mem = memory_mb * 1024 * 1024
    for name, soft, hard in (
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NOFILE", nofile, nofile),
        ("RLIMIT_FSIZE", fsize_mb * 1024 * 1024, fsize_mb * 1024 * 1024),
        ("RLIMIT_NPROC", nproc, nproc),
        ("RLIMIT_MSGQUEUE", 0, 0),
        ("RLIMIT_MEMLOCK", 0, 0),
        ("RLIMIT_CPU", cpu_s, cpu_s + 1),
        ("RLIMIT_AS", mem, mem),
    ):
        res = getattr(resource, name, None)
        try:
            if res is None:
                raise ValueError(f"{name} is not available")
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            if LINUX:
                raise


def keep_fds(fds: list[int]) -> list[int]:
    """Renumber ``fds`` to 3, 4, ... and close every other descriptor; stdio becomes /dev/null."""
    tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + len(fds)) for fd in fds]  # above every target slot
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    out = []
    for i, fd in enumerate(tmp):
        os.dup2(fd, 3 + i)
        out.append(3 + i)
    os.closerange(3 + len(tmp), 1 << 16)
    return out


# ---------------------------------------------------------------------------------------------
# framing and plain-data encoding shared by judge and runner
# ---------------------------------------------------------------------------------------------

def write_frame(fd: int, obj) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int = MAX_FRAME):
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > limit:
        raise ValueError(f"message of {n} bytes exceeds the {limit} byte limit")
    return json.loads(read_exact(fd, n))


def encode(v, handles: dict | None = None, depth: int = 0):
    """Plain values to JSON with type tags; anything else becomes an opaque handle (runner side)
    or a TypeError (judge side, ``handles is None``)."""
    if depth > 200:
        raise ValueError("value nested too deeply")
    d = depth + 1
    if v is None or v is True or v is False:
        return v
    if isinstance(v, (bool, int)):
        return int(v) if not isinstance(v, bool) else bool(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, _Handle):
        return {"t": "handle", "v": v._hid}
    import collections
    import collections.abc
    import decimal
    import fractions

    if isinstance(v, tuple):
        return {"t": "tuple", "v": [encode(x, handles, d) for x in v]}
    if isinstance(v, collections.deque):
        return {"t": "deque", "v": [encode(x, handles, d) for x in v]}
    if isinstance(v, list):
        return [encode(x, handles, d) for x in v]
    if isinstance(v, (set, frozenset)):
        tag = "frozenset" if isinstance(v, frozenset) else "set"
        return {"t": tag, "v": [encode(x, handles, d) for x in v]}
    if isinstance(v, dict):
        tag = "counter" if isinstance(v, collections.Counter) else (
            "odict" if isinstance(v, collections.OrderedDict) else "dict")
        return {"t": tag, "v": [[encode(k, handles, d), encode(x, handles, d)] for k, x in v.items()]}
    if isinstance(v, (bytes, bytearray)):
        return {"t": "bytearray" if isinstance(v, bytearray) else "bytes", "v": bytes(v).hex()}
    if isinstance(v, complex):
        return {"t": "complex", "v": [v.real, v.imag]}
    if isinstance(v, range):
        return {"t": "range", "v": [v.start, v.stop, v.step]}
    if handles is not None and isinstance(v, collections.abc.Iterator):  # generators, map(), zip(), ...
        return {"t": "iter", "v": [encode(x, handles, d) for x in v]}
    if isinstance(v, fractions.Fraction):
        return {"t": "fraction", "v": [str(v.numerator), str(v.denominator)]}
    if isinstance(v, decimal.Decimal):
        return {"t": "decimal", "v": str(v)}
    if handles is None:
        raise TypeError(f"cannot pass a {type(v).__name__} to the candidate (plain data only)")
    hid = len(handles) + 1
    handles[hid] = v
    return {"t": "handle", "v": hid, "type": type(v).__name__[:80]}


def decode(obj, conn=None, handles: dict | None = None):
    """Rebuild plain values from ``encode``; in the judge (``conn`` given) handles become opaque
    :class:`_Handle` proxies, in the runner they become the stored objects."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(x, conn, handles) for x in obj]
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise ValueError("malformed value")
    import collections
    import decimal
    import fractions

    t, v = obj["t"], obj.get("v")
    if t == "handle":
        if not isinstance(v, int):
            raise ValueError("malformed handle")
        if handles is not None:
            return handles[v]
        return _Handle(conn, v, str(obj.get("type", "object")))
    if t in ("bytes", "bytearray"):
        b = bytes.fromhex(v)
        return bytearray(b) if t == "bytearray" else b
    if t == "complex":
        return complex(float(v[0]), float(v[1]))
    if t == "fraction":
        return fractions.Fraction(int(v[0]), int(v[1]))
    if t == "decimal":
        return decimal.Decimal(str(v))
    if t == "range":
        return range(int(v[0]), int(v[1]), int(v[2]))
    if not isinstance(v, list):
        raise ValueError("malformed container")
    if t in ("dict", "odict", "counter"):
        pairs = [(decode(k, conn, handles), decode(x, conn, handles)) for k, x in v]
        if t == "counter":
            return collections.Counter(dict(pairs))
        return collections.OrderedDict(pairs) if t == "odict" else dict(pairs)
    items = [decode(x, conn, handles) for x in v]
    kinds = {"tuple": tuple, "set": set, "frozenset": frozenset, "deque": collections.deque,
             "iter": iter}  # an iterator stays an iterator: list(it) works, it == [..] stays False
    if t not in kinds:
        raise ValueError(f"unknown tag {t!r}")
    return kinds[t](items)


# ---------------------------------------------------------------------------------------------
# runner: untrusted side
# ---------------------------------------------------------------------------------------------

def runner_main(program: str, rfd: int, wfd: int) -> None:
    """Execute the program, report the names it defines, then serve calls until EOF."""
    ns: dict = {"__name__": "solution", "__builtins__": builtins}
    handles: dict = {}
    try:
        exec(compile(program, "solution.py", "exec"), ns)  # noqa: S102 - this is the sandboxed child
    except BaseException as exc:  # SystemExit included: exiting early is a failed program
        write_frame(wfd, {"error": [type(exc).__name__, str(exc)[:DETAILS_CHARS]]})
        os._exit(0)
    names = [k for k, v in list(ns.items()) if not k.startswith("__") and callable(v)][:MAX_NAMES]
    defs = [k for k in names if getattr(getattr(ns[k], "__code__", None), "co_filename", "") == "solution.py"
            or getattr(ns[k], "__module__", "") == "solution"]
    write_frame(wfd, {"ready": names, "defs": defs})
    while True:
        try:
            msg = read_frame(rfd)
        except EOFError:
            os._exit(0)
        try:
            target = msg["f"]
            fn = handles[target] if isinstance(target, int) else ns[target]
            args = decode(msg["a"], handles=handles)
            kwargs = {str(k): decode(x, handles=handles) for k, x in msg["k"].items()}
            value = fn(*args, **kwargs)
            reply = {"ok": encode(value, handles)}
            data = json.dumps(reply, separators=(",", ":"))
        except BaseException as exc:
            reply = {"err": [type(exc).__name__, str(exc)[:DETAILS_CHARS]]}
            try:
                data = json.dumps(reply)
            except BaseException:
                data = json.dumps({"err": ["Exception", "unprintable exception"]})
        raw = data.encode()
        view = memoryview(struct.pack(">I", len(raw)) + raw)
        while view:
            view = view[os.write(wfd, view):]


# ---------------------------------------------------------------------------------------------
# judge: trusted side
# ---------------------------------------------------------------------------------------------

class CandidateError(Exception):
    """The candidate raised an exception that is not a plain built-in one."""


class CandidateCrashed(Exception):
    """The candidate's process is gone (it exited, was killed, or broke the protocol)."""


_SAFE_EXCEPTIONS = {
    name: obj for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception) and obj is not StopIteration
    and not issubclass(obj, (Warning, StopAsyncIteration))
}


class _Conn:
    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd, self.dead = rfd, wfd, None

    def call(self, target, args, kwargs):
        if self.dead:
            raise CandidateCrashed(self.dead)
        msg = {"f": target, "a": [encode(a) for a in args],
               "k": {str(k): encode(v) for k, v in kwargs.items()}}
        try:
            write_frame(self.wfd, msg)
            reply = read_frame(self.rfd)
        except (OSError, EOFError, ValueError) as exc:
            self.dead = f"candidate process gone ({type(exc).__name__})"
            raise CandidateCrashed(self.dead) from None
        if not isinstance(reply, dict):
            raise CandidateError("malformed reply")
        if "ok" in reply:
            try:
                return decode(reply["ok"], conn=self)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError) as exc:
                raise CandidateError(f"undecodable return value: {exc}") from None
        err = reply.get("err")
        name, text = (err + ["", ""])[:2] if isinstance(err, list) else ("Exception", "")
        cls = _SAFE_EXCEPTIONS.get(str(name))
        if cls is not None:
            try:
                raise cls(str(text))
            except TypeError:  # exception classes that need other constructor arguments
                pass
        raise CandidateError(f"{name}: {text}")


class _Remote:
    """A name the program defines, as seen by the tests: calling it calls into the runner."""

    def __init__(self, conn: _Conn, name: str):
        self._conn, self.__name__ = conn, name

    def __call__(self, *args, **kwargs):
        return self._conn.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<candidate {self.__name__}>"


class _Handle:
    """An object the candidate returned that is not plain data. Opaque: no truth value, no
    ordering, equal only to itself; callable (a returned function) and passable back."""

    def __init__(self, conn, hid: int, type_name: str):
        self._conn, self._hid, self._type = conn, hid, type_name

    def __call__(self, *args, **kwargs):
        return self._conn.call(self._hid, args, kwargs)

    def __bool__(self):
        raise TypeError(f"candidate returned an opaque {self._type}; it has no truth value here")

    def __repr__(self):
        return f"<candidate {self._type} object>"


RECORDER = "__grpo_record__"
_BUILTIN_NAMES = frozenset(vars(builtins))


class _Instrument(ast.NodeTransformer):
    """Turn each non-constant ``assert`` into a counted check that never aborts the tests."""

    def __init__(self):
        self.lines: list[int] = []

    def visit_Assert(self, node: ast.Assert):
        if isinstance(node.test, ast.Constant):  # "assert True, 'debug note'" counts for nothing
            return node
        idx = len(self.lines)
        self.lines.append(node.lineno)
        call = ast.Expr(ast.Call(
            ast.Name(RECORDER, ast.Load()),
            [ast.Constant(idx), ast.Lambda(
                ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                              kwarg=None, defaults=[]),
                node.test)],
            []))
        return ast.copy_location(call, node)


def prepare_tests(source: str):
    """Parse and instrument test code. Returns (code object, assert line numbers, calls_check)."""
    tree = ast.parse(source, "tests.py")
    calls_check = any(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
        and n.value.func.id == "check" for n in tree.body)
    inst = _Instrument()
    tree = ast.fix_missing_locations(inst.visit(tree))
    return compile(tree, "tests.py", "exec"), inst.lines, calls_check


class _Progress:
    def __init__(self, lines: list[int]):
        self.lines = lines
        self.ran = [0] * len(lines)
        self.failed = [False] * len(lines)
        self.first_failure = ""

    def passed(self) -> int:
        return sum(1 for r, f in zip(self.ran, self.failed) if r and not f)

    def record(self, idx: int, thunk) -> None:
        try:
            ok = bool(thunk())
            why = "assertion failed"
        except Exception as exc:  # the candidate raised, or returned something unusable
            ok, why = False, f"{type(exc).__name__}: {exc}"
        self.ran[idx] += 1
        if not ok:
            self.failed[idx] = True
            if not self.first_failure:
                self.first_failure = f"tests.py line {self.lines[idx]}: {why}"

    def result(self, status: str, details: str = "") -> dict:
        if not self.lines:  # no counted asserts: finishing check()/test_*() cleanly is the test
            passed, total = int(status == "passed"), 1
        else:
            passed, total = self.passed(), len(self.lines)
            if status == "passed" and passed < total:
                status = "failed"
        return {"passed": passed, "total": total, "status": status,
                "details": (details or self.first_failure)[:DETAILS_CHARS]}


def _from_tests(fn) -> bool:
    return getattr(getattr(fn, "__code__", None), "co_filename", "") == "tests.py"


_TESTS_CACHE: dict[str, tuple] = {}


def _prepared(source: str):
    hit = _TESTS_CACHE.get(source)
    if hit is None:
        hit = prepare_tests(source)
        if len(_TESTS_CACHE) >= 256:
            _TESTS_CACHE.pop(next(iter(_TESTS_CACHE)))
        _TESTS_CACHE[source] = hit
    return hit


def judge(tests: str, entry_point: str | None, rfd: int, wfd: int) -> dict:
    """Run trusted ``tests`` against the program served by the runner on (rfd, wfd)."""
    try:
        code, lines, calls_check = _prepared(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError) as exc:
        return {"passed": 0, "total": 0, "status": "invalid_tests",
                "details": f"tests do not parse: {type(exc).__name__}: {exc}"[:DETAILS_CHARS]}
    prog = _Progress(lines)
    conn = _Conn(rfd, wfd)
    try:
        hello = read_frame(rfd)
    except (EOFError, OSError, ValueError):
        return prog.result("crashed", "the program's process ended before it finished loading")
    if not isinstance(hello, dict) or not isinstance(hello.get("ready"), list):
        err = hello.get("error") if isinstance(hello, dict) else None
        text = f"{err[0]}: {err[1]}" if isinstance(err, list) and len(err) == 2 else "failed to load"
        return prog.result("program_error", f"the program raised {text}")
    names = [n for n in hello["ready"] if isinstance(n, str)][:MAX_NAMES]
    defs = [n for n in hello.get("defs", []) if isinstance(n, str) and n in names]
    ns: dict = {"__name__": "tests", "__builtins__": builtins}
    for name in names:
        # A program's "def abs(x): return 0" must not change what the tests' abs() means.
        if name not in _BUILTIN_NAMES:
            ns[name] = _Remote(conn, name)
    entry = entry_point
    if not entry:
        public = [n for n in defs if not n.startswith("_")]
        entry = public[-1] if public else None
    candidate = _Remote(conn, entry) if entry else None
    if candidate is not None and "candidate" not in ns:
        ns["candidate"] = candidate
    ns[RECORDER] = prog.record
    status, details = "passed", ""
    try:
        exec(code, ns)  # noqa: S102 - trusted test code, sandboxed anyway
        check = ns.get("check")
        has_check = callable(check) and _from_tests(check)
        tests_fns = [v for k, v in ns.items() if k.startswith("test") and callable(v) and _from_tests(v)]
        if not lines and not has_check and not tests_fns:
            return {"passed": 0, "total": 0, "status": "invalid_tests",
                    "details": "the tests contain no assert, check() or test_*() to run"}
        if has_check and not calls_check:
            if candidate is None:
                return {"passed": 0, "total": len(lines) or 1, "status": "program_error",
                        "details": "check(candidate) needs an entry point; the program defines no function"}
            check(candidate)
        for fn in tests_fns:
            fn()
    except CandidateCrashed as exc:
        status, details = "crashed", str(exc)
    except Exception as exc:
        status, details = "error", f"{type(exc).__name__}: {exc}"
    if conn.dead and status != "crashed":
        status, details = "crashed", conn.dead
    return prog.result(status, details)


# ---------------------------------------------------------------------------------------------
# the two server processes
# ---------------------------------------------------------------------------------------------

class _Server:
    """Control-socket framing shared by the zygote and the judge server."""

    def __init__(self, ctrl_fd: int, cfg: dict):
        self.ctrl = socket.socket(fileno=ctrl_fd)
        self.cfg = cfg
        self.report: dict = {"machine": platform.machine(), "euid": os.geteuid()}

    def send(self, obj) -> None:
        data = json.dumps(obj).encode()
        self.ctrl.sendall(struct.pack(">I", len(data)) + data)

    def recv(self):
        msg, fds, _flags, _addr = socket.recv_fds(self.ctrl, 1 << 16, 4)
        if not msg:
            return None, fds
        buf = bytearray(msg)
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            more = self.ctrl.recv(1 << 20)
            if not more:
                return None, fds
            buf += more
        (n,) = struct.unpack(">I", buf[:4])
        return json.loads(bytes(buf[4:4 + n])), fds

    def preload(self) -> None:
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)
        self.read_paths = _read_paths()
        self.abi = landlock_abi() if self.cfg.get("landlock", True) else 0

    def serve(self, handle, nfds: int) -> None:
        import gc

        gc.collect()
        gc.freeze()
        while True:
            job, fds = self.recv()
            if job is None:
                return
            if len(fds) != nfds:
                for fd in fds:
                    os.close(fd)
                self.send({"id": job.get("id"), "error": f"expected {nfds} descriptors"})
                continue
            try:
                reply = handle(job, *fds)
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            reply["id"] = job.get("id")
            self.send(reply)


def _read_paths() -> list[str]:
    """What sandboxed processes may read: the interpreter's own trees and system libraries."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path,
             "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/localtime"]
    out = []
    for p in paths:
        if not p or not os.path.exists(p):
            continue
        real = os.path.realpath(p)
        if real.count("/") < 2 and not os.path.isfile(real):  # never "/", "/root", "/tmp", ...
            continue
        if real not in out:
            out.append(real)
    return out


class JudgeServer(_Server):
    """Persistent judge: sandboxes itself once (no writes, no exec, no new processes, no
    sockets), then runs test suites one after another. It only ever runs trusted test code; the
    candidate stays in its runner process and talks to it through two pipes per job."""

    def setup(self) -> None:
        self.preload()
        layers: dict = {}
        mem = max(1024, int(self.cfg.get("judge_memory_mb", 2048))) * 1024 * 1024
        for res, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_NOFILE, 64),
                           (resource.RLIMIT_AS, mem)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                if LINUX:
                    raise

        def attempt(name, fn):
            try:
                fn()
                layers[name] = True
            except Exception as exc:
                layers[name] = f"{type(exc).__name__}: {exc}"

        if self.abi:
            attempt("landlock", lambda: install_landlock(self.abi, self.read_paths, [], ["/dev/null"]))
        attempt("capabilities_dropped", drop_capabilities)
        try:
            _prctl(PR_SET_DUMPABLE, 0)
        except SetupError:
            pass
        if self.cfg.get("seccomp", True) and platform.machine() in _SYSCALLS:
            attempt("seccomp", install_seccomp)
        self.report["judge_layers"] = layers

    def handle(self, job: dict, rfd: int, wfd: int) -> dict:
        try:
            tests = job.get("tests")
            if not isinstance(tests, str):
                return {"passed": 0, "total": 0, "status": "invalid_tests", "details": "tests must be text"}
            return judge(tests, job.get("entry_point"), rfd, wfd)
        finally:
            os.close(rfd)
            os.close(wfd)  # the runner sees EOF and exits


class Zygote(_Server):
    """Forks one runner per job; never sees any test."""

    def __init__(self, ctrl_fd: int, cfg: dict, base: str):
        super().__init__(ctrl_fd, cfg)
        self.base = base
        self.pid = os.getpid()
        self.jobs = 0
        self.runner_uid: int | None = None
        self.layers: dict[str, bool] = {}

    def setup(self) -> None:
        if self.cfg.get("namespaces", True) and LINUX:
            self.report["namespaces"] = setup_namespaces(self.base, int(self.cfg.get("tmpfs_mb", 256)))
        else:
            self.report["namespaces"] = {"disabled": True}
        try:  # after the uid map is written: a non-dumpable process's /proc/self is root's
            _prctl(PR_SET_DUMPABLE, 0)
        except SetupError:
            pass
        self.preload()
        if os.geteuid() == 0 and self.cfg.get("drop_privileges", True):
            import random

            self.uid_choices = [random.SystemRandom().randrange(2_000_000_000, 2_100_000_000), 65534]
        else:
            self.uid_choices = []
        self.seccomp_ok = self.cfg.get("seccomp", True) and platform.machine() in _SYSCALLS
        self.probe()

    def probe(self) -> None:
        """Fork a child that applies each layer in turn and reports which ones work here."""
        r, w = os.pipe()
        workdir = os.path.join(self.base, "probe")
        os.mkdir(workdir, 0o700)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            res = {}

            def attempt(name, fn):
                try:
                    fn()
                    res[name] = True
                except BaseException as exc:
                    res[name] = f"{type(exc).__name__}: {exc}"

            attempt("rlimits", lambda: set_rlimits(5, 1024, 1))
            if self.abi:
                attempt("landlock", lambda: install_landlock(self.abi, self.read_paths, [workdir],
                                                             ["/dev/null", "/dev/urandom"]))
            else:
                res["landlock"] = "unavailable (kernel without Landlock, or disabled)"
            if self.uid_choices:
                for uid in self.uid_choices:
                    try:
                        os.chown(workdir, uid, uid)
                        drop_uid(uid)
                        res["drop_uid"] = uid
                        break
                    except (OSError, SetupError) as exc:
                        res["drop_uid"] = f"{type(exc).__name__}: {exc}"
            else:
                res["drop_uid"] = "not root (runs as the calling user)" if os.geteuid() else "disabled"
            attempt("capabilities_dropped", drop_capabilities)
            if not self.cfg.get("seccomp", True):
                res["seccomp"] = "disabled"
            elif not self.seccomp_ok:
                res["seccomp"] = f"unavailable (no syscall table for {platform.machine()})"
            else:
                attempt("seccomp", install_seccomp)
            if res.get("landlock") is True:  # the ruleset must actually bite
                try:
                    os.listdir("/")
                    res["landlock"] = "ruleset loaded but / is still readable"
                except OSError:
                    pass
            if res.get("seccomp") is True:  # the filter must actually bite
                try:
                    socket.socket()
                    res["seccomp"] = "filter loaded but socket() still works"
                except OSError:
                    pass
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        _rmtree(workdir)
        try:
            res = json.loads(data)
        except ValueError:
            res = {"probe": "the probe child died"}
        self.report["probe"] = res
        self.layers = {k: res.get(k) is True for k in ("landlock", "seccomp", "capabilities_dropped")}
        uid = res.get("drop_uid")
        self.runner_uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        self.layers["drop_uid"] = self.runner_uid is not None

    def _runner(self, job: dict, fds: list[int], workdir: str) -> None:
        """The runner child: prologue, then the candidate. Never returns."""
        try:
            os.setsid()
            if LINUX:
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != self.pid:
                os._exit(1)
            self.ctrl.detach()  # keep_fds closes it; the socket object must not close a reused number
            kept = keep_fds(fds)
            os.chdir(workdir)
            os.environ.clear()
            os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"})
            set_rlimits(int(float(job.get("timeout", 5.0))) + 1, int(job.get("memory_mb", 512)), 1)
            if self.layers.get("landlock"):
                install_landlock(self.abi, self.read_paths, [workdir], ["/dev/null", "/dev/urandom"])
            if self.runner_uid is not None:
                drop_uid(self.runner_uid)
            elif self.layers.get("capabilities_dropped"):
                drop_capabilities()
            if LINUX:
                _prctl(PR_SET_DUMPABLE, 0)
            if self.layers.get("seccomp"):
                install_seccomp()
        except BaseException:
            os._exit(97)  # a layer that worked in the probe failed: fail closed
        try:
            runner_main(job.get("program", ""), kept[0], kept[1])
        except BaseException:
            pass
        os._exit(0)

    def handle(self, job: dict, rfd: int, wfd: int) -> dict:
        self.jobs += 1
        t0 = time.monotonic()
        timeout = max(0.05, float(job.get("timeout", 5.0)))
        workdir = os.path.join(self.base, f"job{self.jobs}")
        try:
            os.mkdir(workdir, 0o700)
            if self.runner_uid is not None:
                os.chown(workdir, self.runner_uid, self.runner_uid)
            pid = os.fork()
            if pid == 0:
                self._runner(job, [rfd, wfd], workdir)
        finally:
            os.close(rfd)
            os.close(wfd)
        timed_out = self._wait(pid, t0 + timeout)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self._reap(pid)
        _rmtree(workdir)
        return {"timed_out": timed_out, "runner": code, "elapsed": time.monotonic() - t0}

    _reaped: tuple | None = None

    def _wait(self, pid: int, deadline: float) -> bool:
        """Wait for ``pid`` to exit; True if the deadline came first."""
        try:
            pfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pfd = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                if pfd is not None:
                    ready, _, _ = select.select([pfd, self.ctrl], [], [], left)
                    if self.ctrl in ready and not self.ctrl.recv(1, socket.MSG_PEEK):
                        os._exit(0)  # parent gone; the runner dies with us (PDEATHSIG)
                    if pfd in ready:
                        return False
                else:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        self._reaped = (pid, status)
                        return False
                    time.sleep(min(0.002, left))
        finally:
            if pfd is not None:
                os.close(pfd)

    def _reap(self, pid: int) -> str:
        if self._reaped and self._reaped[0] == pid:
            status = self._reaped[1]
            self._reaped = None
        else:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                return "unknown"
        if os.WIFSIGNALED(status):
            return f"signal {os.WTERMSIG(status)}"
        return f"exit {os.WEXITSTATUS(status)}"


def _rmtree(path: str) -> None:
    try:
        os.rmdir(path)  # the usual case: the program wrote nothing
        return
    except OSError:
        pass
    import shutil

    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def main() -> None:
    role, ctrl_fd, cfg = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    server = Zygote(ctrl_fd, cfg, sys.argv[4]) if role == "zygote" else JudgeServer(ctrl_fd, cfg)
    try:
        server.setup()
    except Exception as exc:
        server.send({"hello": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    server.send({"hello": True, "report": server.report, "layers": getattr(server, "layers", {})})
    server.serve(server.handle, 2)


if __name__ == "__main__":
    main()
