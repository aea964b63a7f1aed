"""What every ours-vs-baseline benchmark needs: each side in its own subprocess (so its peak RSS
is its own), timing as first call (compile) + median of repeats, and peak RSS of this process.

A benchmark script calls `run_worker(__file__, side, folder, argv)` from its main process; the
child re-runs the same script with `--worker SIDE --folder FOLDER` and prints one JSON line of
results as its last output line. Holds no benchmark logic of its own.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_and_median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(seconds of the first call, which includes any compilation; median of `repeats` more)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def run_worker(script: str, side: str, folder: str, argv: Sequence[str]) -> dict:
    """Run `script --worker side --folder folder *argv` and return its last stdout line as JSON."""
    command = [sys.executable, script, *argv, "--worker", side, "--folder", folder]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
