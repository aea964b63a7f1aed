"""The walls around runs of model code, raised inside the sandbox's processes.

Two modes, chosen per machine (`probe_namespaces`), both always with the same inner walls:

* ``namespaces`` (root on Linux): the sandbox server lives in its own PID, network and mount
  namespaces (made once; making them per run costs ~130 ms). Every mount is read-only except
  the server's run dir, where each run gets a fresh size-capped tmpfs as its working dir; the
  network namespace has only a downed loopback (connect fails with "Network is unreachable");
  whatever a run leaves behind dies with the server's PID 1 at the latest. The program drops
  every capability (and may never regain one), so it cannot undo any of this. It keeps uid 0:
  the interpreter may live in root's private home, which a drop to `nobody` would make
  unreadable; RLIMIT_NPROC therefore does not bind it, and the process-creation ban below is
  what stops fork bombs.
* ``process`` (any user, the fallback): the run is its own session and process group (killed
  as a group), with a fresh temp dir; the audit hook below is the barrier for the network
  (socket creation is refused) and the file system.

Inner walls in both modes: rlimits (CPU seconds, address space, file size, no core dumps, open
files), a parent-death signal so nothing outlives the server, a `sys.addaudithook` guard
refusing process creation (fork/exec/system/spawn/Popen), signals to other processes, ctypes
(the way around all Python-level checks), object walking through `gc`, and any write, delete,
rename or permission change outside the working dir; and the process-starting functions that
raise no audit event (`_posixsubprocess.fork_exec`, `os.setsid`) replaced by refusals.

The Python-level layers are best effort: determined native code could get around them, which
is why the kernel layer is used whenever the machine allows it. Must never run in the trainer
process: everything here is irreversible for the process that calls it. Never imports jax.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys
from collections.abc import Callable

_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 1, 24, 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "subprocess.Popen", "os.startfile", "os.kill", "os.killpg", "signal.pthread_kill",
    "resource.setrlimit", "resource.prlimit"})
_INTROSPECTION_EVENTS = frozenset({
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "ctypes.cdata/buffer", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.setprofile", "sys.settrace",
    "cpython.PyInterpreterState_Clear", "mmap.__new__"})
_NETWORK_EVENTS = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
    "socket.sethostname", "urllib.Request", "http.client.connect", "ftplib.connect",
    "smtplib.connect", "telnetlib.Telnet.open", "imaplib.open", "poplib.connect", "webbrowser.open"})
# event -> indices of the path arguments that must stay inside the working dir
_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,),
    "os.utime": (0,), "os.chflags": (0,), "os.lchflags": (0,), "os.setxattr": (0,),
    "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.move": (0, 1),
    "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.chown": (0,),
}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def probe_namespaces() -> bool:
    """True when this process may give a forked child its own PID, network and mount namespaces."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:  # the probe must not change the caller's namespaces
        try:
            _check(_libc().unshare(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET), "unshare")
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _mount_calls() -> ctypes.CDLL:
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def enter_server_namespaces(writable_dir: str) -> None:
    """Called once by the sandbox server before it forks its serving process: fresh PID, network
    and mount namespaces; every mount read-only except `writable_dir` (where run dirs are
    mounted). The next child forked becomes PID 1 of the new PID namespace."""
    libc = _mount_calls()
    _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET), "unshare")
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make mounts private")
    target = writable_dir.encode()
    _check(libc.mount(target, target, None, _MS_BIND, None), f"bind {writable_dir}")
    for mount_point, flags in reversed(_mounts()):
        if mount_point == writable_dir or "ro" in flags:
            continue
        # Best effort per mount (some special mounts refuse a remount); the audit guard still
        # stands in front of any mount left writable.
        libc.mount(None, mount_point.encode(), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None)


def mount_run_dir(path: str, disk_bytes: int) -> None:
    """A fresh tmpfs of `disk_bytes` at `path` (inside the server's writable dir) for one run."""
    options = f"size={int(disk_bytes)},mode=0700".encode()
    _check(_mount_calls().mount(b"sandbox", path.encode(), b"tmpfs", 0, options), f"tmpfs at {path}")


def unmount_run_dir(path: str) -> None:
    _mount_calls().umount2(path.encode(), _MNT_DETACH)


def _mounts() -> list[tuple[str, set[str]]]:
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            out.append((fields[4].replace("\\040", " "), set(fields[5].split(","))))
    return out


def drop_capabilities() -> None:
    """Give up every capability for good (bounding set, then effective/permitted/inheritable),
    and forbid regaining any through exec. The uid stays (root's files stay readable: the
    interpreter may live under a private home), but without CAP_SYS_ADMIN the read-only mounts
    cannot be undone and without CAP_DAC_OVERRIDE only owned files are writable."""
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(_LINUX_CAPABILITY_VERSION_3, 0), (Data * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def die_with_parent(expected_parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != expected_parent:
        os._exit(70)


def apply_rlimits(*, cpu_seconds: float, address_space_bytes: int, file_size_bytes: int,
                  max_processes: int | None, open_files: int = 256) -> None:
    """Kernel limits for this process and its children (file-size overruns raise, not kill)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cpu = max(1, int(round(cpu_seconds)))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    if max_processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))


def address_space_in_use() -> int:
    """Bytes of virtual address space this process maps now (VmSize)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


_PROCESS_FUNCTIONS = {
    "os": ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "kill", "killpg", "execv",
           "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve",
           "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "popen", "setsid"),
    "posix": ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "kill", "killpg", "execv",
              "execve", "setsid"),
    "_posixsubprocess": ("fork_exec",),
    "subprocess": ("_fork_exec",),
    "signal": ("pthread_kill",),
}


def disable_process_functions() -> None:
    """Replace every way to start or signal a process with a function that refuses.

    Complements the audit hook: `_posixsubprocess.fork_exec` (and `os.setsid`) raise no audit
    event, so without this a program could start a detached process in process-isolation mode.
    """
    import importlib

    def refuse(*args, **kwargs):
        raise PermissionError("sandbox: starting or signalling processes is not allowed for "
                              "generated programs")
    for module_name, names in _PROCESS_FUNCTIONS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if hasattr(module, name):
                setattr(module, name, refuse)


def make_audit_guard(workdir: str, block_network: bool) -> Callable[[str, tuple], None]:
    """The audit hook refusing what model code must never do; see the module docstring."""
    root = os.path.realpath(workdir)
    inside_prefix = root.rstrip(os.sep) + os.sep
    blocked = _PROCESS_EVENTS | _INTROSPECTION_EVENTS | (_NETWORK_EVENTS if block_network else frozenset())
    path_events = _PATH_EVENTS
    realpath, join, getcwd, fspath = os.path.realpath, os.path.join, os.getcwd, os.fspath

    def inside(path) -> bool:
        if isinstance(path, int) or path is None:
            return True  # an already open descriptor, or no path at all
        try:
            raw = fspath(path)
            text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
            full = realpath(join(getcwd(), text))
        except (OSError, ValueError, TypeError):
            return False
        return full == root or full.startswith(inside_prefix) or full == "/dev/null"

    def guard(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} is not allowed; write only in the "
                                      f"working directory")
        elif event in blocked:
            raise PermissionError(f"sandbox: {event} is not allowed for generated programs")
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError(f"sandbox: {event} on {args[i]!r} is not allowed outside "
                                          f"the working directory")

    return guard
