"""The walls around runs of model code, raised inside the sandbox's processes.

Two modes; the inner walls below are raised in both:

* ``bwrap`` (the default; root on Linux with bubblewrap): the sandbox server lives in a
  bubblewrap sandbox (`envs.bwrap`: own PID, network, IPC and mount namespaces, a read-only
  system, no host files, sockets or processes in sight). For each run it mounts a fresh
  size-capped tmpfs as the working dir; the program process then covers the project's files
  (`hide_paths`), drops to an unprivileged uid of the sandbox's own (`become_program_uid`: no
  capability, nothing writable but its tmpfs, RLIMIT_NPROC binds it, and it cannot signal,
  trace or read the root-owned, undumpable server) and loads the seccomp filter
  (`envs.seccomp`: no fork, exec or socket). After the run the server kills every process of
  that uid, so nothing carries over to the next program.
* ``process`` (an explicit fallback for machines without root or bubblewrap, announced by a
  loud warning): the run is its own session and process group (killed as a group), with a
  fresh temp dir, the seccomp filter when libseccomp loads, and the Python-level walls below as
  the barrier for the file system; the host's files stay readable.

Inner walls in both modes: rlimits (CPU seconds, address space, file size, no core dumps, open
files), a parent-death signal so nothing outlives the server, a `sys.addaudithook` guard
refusing process creation (fork/exec/system/spawn/Popen), signals to other processes, ctypes
(the way around all Python-level checks), object walking through `gc`, and any write, delete,
rename or permission change outside the working dir; and the process-starting functions that
raise no audit event (`_posixsubprocess.fork_exec`, `os.setsid`) replaced by refusals.

The Python-level layers are best effort (native code gets around them), which is why the kernel
layers come first. Must never run in the trainer process: everything here is irreversible for
the process that calls it. Never imports jax.
"""
from __future__ import annotations

import ctypes
import functools
import os
import resource
import signal
import sys
from collections.abc import Callable

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38

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


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """The C library's symbols, from the interpreter itself (find_library would run a compiler)."""
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount_calls() -> ctypes.CDLL:
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def mount_run_dir(path: str, disk_bytes: int, owner: int) -> None:
    """A fresh tmpfs of `disk_bytes` at `path`, owned by the program's uid, for one run."""
    options = f"size={int(disk_bytes)},mode=0700,uid={owner},gid={owner}".encode()
    _check(_mount_calls().mount(b"sandbox", path.encode(), b"tmpfs", 0, options), f"tmpfs at {path}")


def unmount_run_dir(path: str) -> None:
    _mount_calls().umount2(path.encode(), _MNT_DETACH)


def hide_paths(paths: list[str]) -> None:
    """In a mount namespace of this process's own, cover each path with an empty read-only
    tmpfs (the project's files: the server imported them, the program must not read them)."""
    libc = _mount_calls()
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    for path in paths:
        _check(libc.mount(b"hidden", path.encode(), b"tmpfs", _MS_RDONLY, b"size=4096,mode=0555"),
               f"hide {path}")


def become_program_uid(uid: int) -> None:
    """Drop to `uid` (and gid) for good, without supplementary groups: every capability goes
    with root, the uid owns nothing outside the run's tmpfs, and RLIMIT_NPROC binds it."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc = _libc()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def make_undumpable() -> None:
    """Nobody without CAP_SYS_PTRACE may read this process's memory, descriptors or environment
    through /proc (the sandbox server, whose uid differs from the programs' anyway)."""
    _check(_libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


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
