"""Run model-written code in a separate, walled-off process and get back what its runner made.

    sandbox = Sandbox("envs.chart.runner", SandboxLimits(cpu_seconds=10, wall_seconds=15))
    outcome = sandbox.run(code, {"width": 640, ...})   # never raises for what the code does
    outcome.ok, outcome.result, outcome.artifacts["render.png"], outcome.error, outcome.stdout
    sandbox.close()                                      # or use it as a context manager

The runner (the part after exec, e.g. drawing a chart or saving a deck) is a module name, so
the same sandbox serves every domain: see `envs.sandbox_server` for the runner protocol and the
process layout, `envs.bwrap` for the outer wall and `envs.isolation` / `envs.seccomp` for the
inner ones. Isolation "bwrap" (the default) needs root and bubblewrap (`launch/setup.sh`
installs it) and fails with a SandboxError naming the fix without them; "process" is the
explicit fallback without namespaces, announced by a loud warning (`Sandbox.isolation` says
which is in force). Each run forks a fresh child from a warm server that was started as a clean
exec of the interpreter, so this is safe to call from a process that has jax loaded. Every
failure of the program (time-out, crash, exit, memory, oversized output) comes back as
`ok=False` with an `ExecError` that names the cause and the fix. What a run returns are
artifacts made by the process that ran model code: callers judge them as untrusted data.

Not thread-safe across concurrent `run` calls on one instance (they are serialised by a lock);
use one Sandbox per worker. Never imports jax.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from typing import Any

import envs
from envs import bwrap
from envs.config_dict import checked
from envs.feedback import ExecError
from envs.program import line_from_fault_dump
from envs.sandbox_server import SETUP_FAILED_EXIT, decode_frame, encode_frame, unpack_artifacts

ISOLATION_MODES = ("bwrap", "process")
_PROGRAM_UIDS = (1 << 20, 1 << 30)  # each sandbox draws its programs' uid from this range
_SANDBOX_TMP = "/tmp"  # the server's base dir inside bubblewrap (a private tmpfs)
_START_TIMEOUT_S = 180.0  # preload of a runner's libraries on a busy 2-core machine
_REPLY_GRACE_S = 20.0  # beyond the run's own wall limit, before the server counts as hung
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
_DROPPED_ENV = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "no_proxy", "NO_PROXY", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME")


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. memory_bytes is address space on top of the warm server's own."""

    cpu_seconds: float = 20.0
    wall_seconds: float = 30.0
    memory_bytes: int = 2 << 30
    file_size_bytes: int = 32 << 20
    disk_bytes: int = 128 << 20  # tmpfs working dir (bwrap mode)
    max_processes: int = 64  # RLIMIT_NPROC for the run's uid (bwrap mode), threads included
    output_bytes: int = 64 << 10  # kept of stdout and of stderr each
    result_bytes: int = 64 << 20  # the runner's result frame (JSON + render)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SandboxLimits.{field.name} must be a positive number, got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "SandboxLimits":
        """Limits from a config dict; unknown keys are an error naming the valid ones."""
        return cls(**checked(cls, values, "sandbox limit"))


@dataclasses.dataclass
class SandboxResult:
    """How one run ended. `ok` means the runner returned a result (the program may still have
    failed: that is the runner's to say inside `result`)."""

    ok: bool
    result: dict[str, Any] | None = None
    artifacts: dict[str, bytes] = dataclasses.field(default_factory=dict)
    error: ExecError | None = None
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    isolation: str = ""


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (e.g. the runner's libraries fail to import)."""


class Sandbox:
    """A warm fork server for one runner module; see the module docstring."""

    def __init__(self, runner: str, limits: SandboxLimits | None = None, isolation: str = "bwrap",
                 start: bool = True):
        if isolation not in ISOLATION_MODES:
            raise ValueError(f"Sandbox isolation must be one of {ISOLATION_MODES}, got {isolation!r}")
        self.runner = runner
        self.limits = limits or SandboxLimits()
        self.requested_isolation = isolation
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._base_dir: str | None = None
        self._ready_mode: str | None = None
        self._buffer = b""
        self.sandbox_id = uuid.uuid4().hex  # in the environment of the server and every run
        low, high = _PROGRAM_UIDS
        self.program_uid = low + uuid.uuid4().int % (high - low)
        self.last_result: SandboxResult | None = None  # the latest run's outcome (resource use)
        if start:
            self._spawn()

    # ------------------------------------------------------------ lifecycle
    @property
    def isolation(self) -> str:
        """'bwrap' or 'process' once the server is up (starts it if needed)."""
        with self._lock:
            self._ensure_ready()
            return self._ready_mode or ""

    @property
    def server_pids(self) -> list[int]:
        """The processes that keep the sandbox (bwrap, its PID 1 and the server), not runs:
        in bwrap mode every descendant not running as the programs' uid."""
        if self._proc is None:
            return []
        pids = [self._proc.pid]
        if self._ready_mode != "bwrap":
            return pids
        children: dict[int, list[tuple[int, int]]] = {}
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b")", 1)[1].split()[1])
                uid = os.stat(f"/proc/{entry}").st_uid
                children.setdefault(parent, []).append((int(entry), uid))
            except (OSError, ValueError, IndexError):
                continue
        for pid in pids:
            pids += [child for child, uid in children.get(pid, []) if uid != self.program_uid]
        return pids

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and everything under it; idempotent."""
        with self._lock:
            self._stop()

    def __del__(self):
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _spawn(self) -> None:
        project_root = os.path.dirname(os.path.dirname(os.path.abspath(envs.__file__)))
        env = {name: "1" for name in _THREAD_ENV}
        env.update({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": project_root,
                    "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
                    "PYTHONUNBUFFERED": "1", "SDPO_SANDBOX_ID": self.sandbox_id})
        server = [sys.executable, "-B", "-s", "-m", "envs.sandbox_server", self.runner]
        if self.requested_isolation == "bwrap":
            argv, cwd = self._bwrap_argv(server, env, project_root), None
        else:
            argv, cwd = self._process_argv(server, env, project_root), self._base_dir
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      cwd=cwd, start_new_session=True, close_fds=True)
        self._buffer = b""
        self._ready_mode = None

    def _bwrap_argv(self, server: list[str], env: dict[str, str], project_root: str) -> list[str]:
        reason = bwrap.unavailable_reason()
        if reason is not None:
            raise SandboxError(f"the bubblewrap sandbox is unavailable: {reason}. The process "
                               "fallback (isolation='process') runs model code without "
                               "namespaces; choose it only knowingly.")
        env["MPLCONFIGDIR"] = _SANDBOX_TMP
        return bwrap.command(server + [_SANDBOX_TMP, "bwrap", str(self.program_uid)],
                             read_only=[os.path.join(project_root, "envs")], env=env,
                             caps=bwrap.SERVER_CAPS + ("CAP_KILL",),
                             binds=_font_cache_binds(_SANDBOX_TMP))

    def _process_argv(self, server: list[str], env: dict[str, str], project_root: str) -> list[str]:
        warnings.warn("SANDBOX FALLBACK: isolation='process' runs model-written code without "
                      "namespaces, a separate uid or a private file system; host files stay "
                      "readable. Use it only where bubblewrap cannot run (README, Security).",
                      RuntimeWarning, stacklevel=4)
        self._base_dir = tempfile.mkdtemp(prefix="sdpo-sandbox-")
        env.update({k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and k not in env})
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (project_root, os.environ.get("PYTHONPATH")) if p)
        return server + [self._base_dir, "process", "0"]

    def _ensure_ready(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._spawn()
        if self._ready_mode is not None:
            return
        frame = self._read_frame(time.monotonic() + _START_TIMEOUT_S)
        if frame is None or frame[0].get("op") != "ready":
            detail = "" if frame is None else frame[0].get("error", "") + "\n" + frame[0].get("traceback", "")
            self._stop()
            raise SandboxError(f"the sandbox server for runner {self.runner!r} did not start: "
                               f"{detail.strip() or 'no reply within %.0f s' % _START_TIMEOUT_S}. Fix: "
                               f"check that `python -m envs.sandbox_server {self.runner} DIR "
                               f"process 0` imports cleanly in this venv.")
        self._ready_mode = frame[0]["isolation"]

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the server and any run it supervises
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None
        self._ready_mode = None

    # ------------------------------------------------------------ runs
    def run(self, code: str, request: dict[str, Any] | None = None) -> SandboxResult:
        """Run `code` under the runner; see SandboxResult. Raises only SandboxError when the
        sandbox cannot start at all (a setup problem, not something the code did)."""
        with self._lock:
            self._ensure_ready()
            header = {"op": "run", "code": code, "request": request or {},
                      "limits": dataclasses.asdict(self.limits), "run_id": uuid.uuid4().hex}
            try:
                self._proc.stdin.write(encode_frame(header))
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._stop()
                return _failure("SandboxError", "the sandbox server died before the run; it will be "
                                "restarted for the next run")
            frame = self._read_frame(time.monotonic() + self.limits.wall_seconds + _REPLY_GRACE_S)
            if frame is None:
                self._stop()
                return _failure("SandboxError", "the sandbox server stopped answering; it was killed "
                                "and will be restarted for the next run")
            if frame[0].get("run_id") != header["run_id"]:
                self._stop()
                return _failure("SandboxError", "the sandbox server answered for another run; it "
                                "was killed and will be restarted for the next run")
            self.last_result = self._interpret(*frame)
            return self.last_result

    def _read_frame(self, deadline: float) -> tuple[dict[str, Any], bytes] | None:
        """Next frame from the server, or None at its death or the deadline."""
        fd = self._proc.stdout.fileno()
        while True:
            if len(self._buffer) >= 16:
                head_len = int.from_bytes(self._buffer[:8], "big")
                total = 16 + head_len + int.from_bytes(self._buffer[8:16], "big")
                if len(self._buffer) >= total:
                    frame, self._buffer = self._buffer[:total], self._buffer[total:]
                    return decode_frame(frame)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk

    def _interpret(self, reply: dict[str, Any], payload: bytes) -> SandboxResult:
        common = dict(stdout=reply.get("stdout", ""), stderr=reply.get("stderr", ""),
                      wall_s=float(reply.get("wall_s", 0.0)), cpu_s=float(reply.get("cpu_s") or 0.0),
                      max_rss_kb=int(reply.get("max_rss_kb") or 0), isolation=reply.get("isolation", ""))
        error = self._run_error(reply, payload, common)
        if error is not None:
            return SandboxResult(ok=False, error=error, **common)
        try:
            result, artifacts = unpack_artifacts(payload)
        except (ValueError, KeyError, TypeError, UnicodeError) as err:
            return SandboxResult(ok=False, error=ExecError(
                "ProtocolError", f"the run's result could not be read ({err}); programs must not "
                                 "write to the sandbox's result channel"), **common)
        if "runner_error" in result:
            return SandboxResult(ok=False, error=ExecError(
                "RunnerError", "the environment's runner failed after the program ran:\n"
                               + str(result["runner_error"])[-1500:]), **common)
        return SandboxResult(ok=True, result=result, artifacts=artifacts, **common)

    def _run_error(self, reply: dict[str, Any], payload: bytes, common: dict) -> ExecError | None:
        limits = self.limits
        if reply.get("timed_out"):
            return ExecError("Timeout", f"the program ran longer than {limits.wall_seconds:g} s (wall "
                                        "clock) and was stopped; make it finish faster (no sleeps, "
                                        "no endless loops, less data)")
        sig = reply.get("signal")
        if sig in (signal.SIGXCPU, signal.SIGKILL) and common["cpu_s"] >= limits.cpu_seconds - 0.2:
            return ExecError("Timeout", f"the program used more than {limits.cpu_seconds:g} s of CPU "
                                        "time and was stopped; make it do less work")
        if sig:
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = (" (a native library failed; running out of memory can cause this)"
                    if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) else "")
            return ExecError("Crash", f"the program crashed with {name}{hint}",
                             line_from_fault_dump(common["stderr"]))
        if reply.get("result_overflow"):
            return ExecError("OutputTooLarge", f"the run's result is larger than "
                                               f"{limits.result_bytes} bytes; draw less")
        exit_code = reply.get("exit_code")
        if exit_code == SETUP_FAILED_EXIT:
            return ExecError("SandboxError", "the sandbox could not raise its walls: "
                             + common["stderr"][-1500:])
        if not payload:
            return ExecError("Exit", f"the program ended the interpreter (exit code {exit_code}) "
                                     "before its result was written; do not call os._exit/os.abort")
        return None


def _font_cache_binds(inside: str) -> list[tuple[str, str]]:
    """The host's matplotlib font list, shown read-only to the server (rebuilding it costs
    seconds per sandbox start); none when the host has not built one."""
    base = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    return [(path, os.path.join(inside, os.path.basename(path)))
            for path in sorted(glob.glob(os.path.join(base, "fontlist-v*.json")))]


def _failure(kind: str, message: str) -> SandboxResult:
    return SandboxResult(ok=False, error=ExecError(kind, message))
