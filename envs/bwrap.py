"""The outer wall: bubblewrap command lines for the sandbox server and the renderers.

    argv = bwrap.command([python, "-m", "envs.sandbox_server", ...], read_only=[project_root])

`command` wraps a command in fresh user-visible namespaces (PID, network, IPC, UTS, cgroup, and
a mount namespace built from scratch): the system (`/usr` and the merged-/usr links), a short
list of `/etc` entries programs need (fonts, the loader cache, time zone), the interpreter and
its venv, and the given paths, all read-only; a private, size-capped tmpfs at `/tmp` (owned by
root, 0755: only directories the server makes for a run are writable), a read-only `/dev/shm`,
minimal `/dev` and a `/proc` of the new PID namespace. Nothing else of the host exists inside:
not `/root`, `/home`, `/run` (no host sockets), `/var`, the data folder or other sandboxes' `/tmp`.
The network namespace has only loopback. The environment is scrubbed (`--clearenv`). The
sandbox dies with the process that started it (`--die-with-parent`, and every process in it
with its PID 1), and with it its tmpfs: nothing is left on the host after SIGTERM or SIGKILL.

Run as root (this project's machines and CI), bubblewrap is not setuid and keeps the caller's
capabilities in the new namespaces; the processes inside decide which to keep: the sandbox
server keeps what it needs to make per-run mounts and drop each program to an unprivileged uid
(`envs.isolation.become_program_uid`), so model code never runs as root. Without root use the
explicit process fallback (`isolation="process"`). Never imports jax.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping

CACHES = ("/var/cache/fontconfig",)
ETC_ENTRIES = ("fonts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives",
               "libreoffice", "chromium", "chromium.d", "mime.types", "passwd", "group",
               "nsswitch.conf", "ucf.conf")
# what the sandbox server keeps: mount a tmpfs per run, make each program an unprivileged uid
SERVER_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID")


def executable() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not (and the fix)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if executable() is None:
        return "bwrap is not installed: install Debian's bubblewrap (bash launch/setup.sh)"
    if os.geteuid() != 0:
        return ("the bubblewrap sandbox runs as root, so that each program can be dropped to an "
                "unprivileged uid of its own; run as root or choose isolation='process'")
    probe = subprocess.run(command(["/bin/true"]), capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"bwrap failed on this kernel: {probe.stderr.decode(errors='replace').strip()[:300]}"
    return None


def _system_paths() -> list[str]:
    paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"]
    paths += [os.path.join("/etc", entry) for entry in ETC_ENTRIES] + list(CACHES)
    return [p for p in paths if os.path.lexists(p)]


def python_paths() -> list[str]:
    """What the running interpreter needs to start: its installation and its venv (resolved)."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if not p.startswith("/usr/"))


def _ancestors(path: str) -> list[str]:
    parts = path.strip(os.sep).split(os.sep)[:-1]
    return [os.sep + os.sep.join(parts[:i]) for i in range(1, len(parts) + 1)]


def _mount_read_only(paths: list[str], trees: list[str], made: set[str]) -> list[str]:
    """bwrap arguments binding `paths` read-only (symlinks as symlinks), skipping those inside
    another bound tree, with their parent folders made first (in `made`)."""
    args: list[str] = []
    for path in paths:
        if any(path.startswith(other + os.sep) for other in trees if not os.path.islink(other)):
            continue  # already inside a bound tree
        for parent in _ancestors(path):  # bwrap would make them 0700: unreadable for programs
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind", path, path]
    return args


def command(argv: list[str], *, read_only: Iterable[str] = (), env: Mapping[str, str] | None = None,
            caps: Iterable[str] = (), binds: Iterable[tuple[str, str]] = (),
            tmp_bytes: int = 256 << 20, cwd: str = "/tmp") -> list[str]:
    """`argv` wrapped in a fresh sandbox (see the module docstring); `caps` are the only
    capabilities its first process keeps (none by default); `binds` are extra read-only
    (host path, sandbox path) pairs, mounted after the private /tmp."""
    args = [executable() or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--clearenv", "--hostname", "sandbox"]
    trees = sorted({os.path.realpath(p) for p in read_only} | set(python_paths())
                   | set(_system_paths()))
    # A checkout or venv under /tmp (a clone there) is mounted after the private /tmp hides it.
    in_tmp = [p for p in trees if p.startswith(("/tmp/", "/dev/shm/"))]
    made: set[str] = set()
    args += _mount_read_only([p for p in trees if p not in in_tmp], trees, made)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--size", str(int(tmp_bytes)),
             "--tmpfs", "/tmp", "--perms", "0755", "--tmpfs", "/dev/shm"]
    args += _mount_read_only(in_tmp, trees, made)
    args += ["--remount-ro", "/dev/shm", "--chdir", cwd, "--cap-drop", "ALL"]
    for host, inside in binds:
        args += ["--ro-bind", host, inside]
    for cap in caps:
        args += ["--cap-add", cap]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    return args + ["--", *argv]
