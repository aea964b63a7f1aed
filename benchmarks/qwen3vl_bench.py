"""The benchmark Qwen3-VL and CPU-aware timing, for benchmarks that run our JAX code against
transformers (subprocess runner and peak RSS live in benchmarks/harness.py).

`bench_config()` is Qwen3-VL-8B's config shrunk to hidden 512 / 8 layers with the full
vocabulary; `timed()` records wall and process CPU seconds per call, because on a shared
machine other jobs steal cores from the wall clock but not from a process's CPU time. Holds no
benchmark logic of its own.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable


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


@dataclasses.dataclass(frozen=True)
class Timing:
    """One function timed: its first call (which includes any compile), then `repeats` more
    calls as wall seconds and as CPU seconds of this process (all threads)."""

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
