"""A seccomp filter for the process that runs model code, through libseccomp (ctypes).

Why ctypes and not a Python binding: Debian's `python3-seccomp` belongs to the system Python,
not to the project's venv, and bubblewrap's `--seccomp FD` filters the whole sandbox, the warm
server too (which must keep forking). libseccomp2 is part of every Debian base system; we build
the filter once in the sandbox server (`Filter`) and load it in each program process after the
fork (`Filter.load`), so the kernel refuses, for that process and anything it could start:

* new processes (fork, vfork, clone without CLONE_THREAD, clone3) and exec: threads stay allowed;
* sockets of every family (socket, socketpair): no network, no host or abstract unix sockets;
* looking into or changing other processes or the kernel: ptrace, process_vm_*, kcmp, bpf,
  perf_event_open, userfaultfd, io_uring, keyrings, namespaces (unshare, setns), mounts, chroot,
  module loading, reboot, swap, acct, quotas, handle-based opens, syslog.

Refused calls fail with EPERM (ENOSYS for clone3, so the C library falls back to clone, where
the CLONE_THREAD rule decides). Everything else is allowed: the filter is a deny list tuned for
what chart and slide programs never need, on top of the namespaces, uid and rlimits of
`envs.bwrap` and `envs.isolation`. Linux only; never imports jax.
"""
from __future__ import annotations

import ctypes
import errno

_ACT_ALLOW = 0x7FFF0000
_CMP_MASKED_EQ = 7
_CLONE_THREAD = 0x00010000

DENIED = (
    "fork", "vfork", "execve", "execveat", "socket", "socketpair", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig", "move_mount",
    "open_tree", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "open_by_handle_at", "name_to_handle_at",
    "syslog", "pidfd_getfd", "process_madvise")


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class SeccompUnavailable(RuntimeError):
    """libseccomp is missing or the kernel refused the filter."""


class Filter:
    """The deny-list filter above, built once; `load()` applies it to the calling process."""

    def __init__(self):
        try:
            self._lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as err:
            raise SeccompUnavailable(f"libseccomp cannot be loaded ({err}); install Debian's "
                                     "libseccomp2 (bash launch/setup.sh)") from err
        lib = self._lib
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self._ctx = lib.seccomp_init(_ACT_ALLOW)
        if not self._ctx:
            raise SeccompUnavailable("seccomp_init failed")
        for name in DENIED:
            self._rule(name, _errno_action(errno.EPERM))
        self._rule("clone3", _errno_action(errno.ENOSYS))
        not_a_thread = (_ArgCmp * 1)(_ArgCmp(0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))
        self._rule("clone", _errno_action(errno.EPERM), not_a_thread)

    def _rule(self, syscall: str, action: int, args=None) -> None:
        number = self._lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:
            return  # not a system call on this architecture
        rc = self._lib.seccomp_rule_add_array(self._ctx, action, number, len(args or ()), args)
        if rc != 0:
            raise SeccompUnavailable(f"seccomp rule for {syscall} failed: "
                                     f"{errno.errorcode.get(-rc, rc)}")

    def load(self) -> None:
        """Apply the filter to this process for good (it also sets no_new_privs)."""
        rc = self._lib.seccomp_load(self._ctx)
        if rc != 0:
            raise SeccompUnavailable(f"seccomp_load failed: {errno.errorcode.get(-rc, rc)}")
