"""Shared pieces of the Qwen3-VL benchmarks that pit our JAX code against transformers.

The benchmark model (Qwen3-VL-8B's config shrunk to hidden 512 / 8 layers, full vocabulary),
the timing and peak-memory helpers, and the runner that puts each side in its own subprocess
so that each peak RSS belongs to one side only. Benchmarks import it as a sibling module
(`python benchmarks/NAME.py` puts this folder first on sys.path); it must stay free of any
particular benchmark's logic.
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)


def bench_config() -> dict:
    """Qwen3-VL-8B's config.json fields (vocabulary, token ids, RoPE, patch geometry) shrunk
    to hidden 512 and 8 decoder layers, with a 4-block vision tower and two DeepStack taps."""
    from configs import model_sizes

    spec = model_sizes.get_config("8b").to_dict()
    spec["text_config"].update(hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                               num_attention_heads=8, num_key_value_heads=4, head_dim=64,
                               max_position_embeddings=32768)
    spec["text_config"]["rope_parameters"]["mrope_section"] = [12, 10, 10]  # head_dim / 2
    spec["vision_config"].update(depth=4, hidden_size=256, intermediate_size=1024, num_heads=4,
                                 out_hidden_size=512, deepstack_visual_indexes=[1, 2])
    return spec


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass(frozen=True)
class Timing:
    """One function timed: its first call (which includes any compile), then `repeats` more
    calls as wall seconds and as CPU seconds of this process (all threads). On a shared
    machine the CPU seconds stay meaningful when other jobs steal cores from the wall clock."""

    first_s: float
    wall_s: list[float]
    cpu_s: list[float]

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_s)


def timed(fn: Callable[[], object], repeats: int) -> Timing:
    """Time `fn` (which must block until its work is done) once, then `repeats` times."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(first, wall, cpu)


def run_worker(script: str, side: str, folder: str, argv: Sequence[str]) -> dict:
    """Run `script --worker side --folder folder *argv` in a fresh interpreter and return the
    JSON object it prints last; a failing worker stops the benchmark with its stderr."""
    command = [sys.executable, os.path.abspath(script), *argv, "--worker", side,
               "--folder", folder]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
