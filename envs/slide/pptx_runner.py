"""Run a python-pptx program in a sandbox child and collect its deck and statement trace.

The child (envs/slide/pptx_child.py) is its own session/process group with CPU, memory and
file-size limits, no network and writes confined to a fresh temp dir; a wall-clock deadline
kills the whole group. Stdout/stderr are captured and capped. Never raises for bad programs:
the result says what happened. Never imports jax.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

from envs.feedback import ExecError

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
OUTPUT_CAP = 20_000


@dataclasses.dataclass
class RunLimits:
    wall_seconds: float = 20.0
    cpu_seconds: float = 15.0
    memory_bytes: int = 2 << 30
    max_source_chars: int = 200_000


@dataclasses.dataclass
class ProgramRun:
    """What one program left behind: the deck (if any), its trace, and what went wrong."""

    workdir: pathlib.Path
    deck: pathlib.Path | None
    trace: dict[tuple[int, int], dict[str, list[list[int]]]]
    error: ExecError | None
    stdout: str
    stderr: str
    seconds: float


def run_pptx_program(code: str, limits: RunLimits, workdir: pathlib.Path) -> ProgramRun:
    """Execute `code` in `workdir` (created by the caller, removed by the caller)."""
    import time
    t0 = time.monotonic()
    if len(code) > limits.max_source_chars:
        return ProgramRun(workdir, None, {}, ExecError("ProgramTooLarge", f"program has {len(code)} "
                          f"characters, above the limit of {limits.max_source_chars}"), "", "", 0.0)
    (workdir / "program.py").write_text(code, encoding="utf-8", errors="replace")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_ROOT),
           "HOME": str(workdir), "TMPDIR": str(workdir), "PYTHONDONTWRITEBYTECODE": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "envs.slide.pptx_child", str(workdir), str(limits.cpu_seconds),
         str(limits.memory_bytes)], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    stdout = out.decode("utf-8", "replace")[:OUTPUT_CAP]
    stderr = err.decode("utf-8", "replace")[:OUTPUT_CAP]
    seconds = time.monotonic() - t0
    deck = workdir / "deck.pptx"
    if timed_out:
        return ProgramRun(workdir, None, {}, ExecError(
            "TimeoutError", f"the program did not finish within {limits.wall_seconds:.0f}s "
                            f"(an endless loop or a very slow build); it was stopped"), stdout, stderr, seconds)
    trace_file = workdir / "trace.json"
    try:
        report = json.loads(trace_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        reason = ("it ran out of memory or CPU time" if proc.returncode and proc.returncode < 0
                  else "it exited before finishing")
        tail = stderr.strip().splitlines()[-1:] or [""]
        return ProgramRun(workdir, None, {}, ExecError(
            "ProgramCrashed", f"the program produced no result: {reason} (exit {proc.returncode}) "
                              f"{tail[0][:300]}".strip()), stdout, stderr, seconds)
    trace = {(int(s), int(i)): lines for s, i, lines in report.get("trace", [])}
    error = ExecError.from_json(report["error"]) if report.get("error") else None
    if error is None and not deck.is_file():
        error = ExecError("NoPresentation", "the program created no Presentation: build one with "
                                            "pptx.Presentation() and add slides to it")
    return ProgramRun(workdir, deck if deck.is_file() else None, trace, error, stdout, stderr, seconds)


@contextlib.contextmanager
def scratch_dir():
    with tempfile.TemporaryDirectory(prefix="sdpo_pptx_") as d:
        yield pathlib.Path(d)
