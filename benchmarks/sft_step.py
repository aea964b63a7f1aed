"""Warm-start step time: examples packed end to end (ours) against one example per row, padded
to the longest (the usual unpacked layout), the same examples through the same jitted step.

The toy model and the warm start's real examples (configs/sft_toy.py: careless programs and
revisions whose feedback the chart env computed); revisions without their render image here, so
both layouts are text-only and the comparison is the layout alone. Both sides alternate step by
step, so load from other processes hits them alike; medians after one compile each.

    .venv/bin/python benchmarks/sft_step.py [--steps 4] [--repeats 3]
Ends with one JSON line: ours / baseline = packed / padded seconds per step (lower is better).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import peak_rss_mb  # noqa: E402
from configs.sft_toy import get_config  # noqa: E402
from sdpo_jax.sequences import Sequences, pack_rows  # noqa: E402
from sdpo_jax.sft import pack_supervised  # noqa: E402
from sdpo_jax.train_step import SupervisedBatch  # noqa: E402
from sdpo_jax.trainer import Trainer  # noqa: E402


def padded(trainer: Trainer, examples, width: int) -> SupervisedBatch:
    """One example per row, each row `width` wide (padding at its end)."""
    rows = [pack_rows(trainer.model_config, [e.prompt], [e.response], rows=1, width=width,
                      image_slots=0, slot_patches=0) for e in examples]
    cat = lambda get, axis=0: np.concatenate([get(r) for r in rows], axis=axis)  # noqa: E731
    seq = Sequences(input_ids=cat(lambda r: r.sequences.input_ids),
                    positions=cat(lambda r: r.sequences.positions, 1),
                    mask=cat(lambda r: r.sequences.mask), vision=None,
                    segment_ids=cat(lambda r: r.sequences.segment_ids))
    return SupervisedBatch(seq, cat(lambda r: r.targets), cat(lambda r: r.loss_mask))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="distinct steps of examples")
    parser.add_argument("--repeats", type=int, default=3, help="passes over those steps")
    args = parser.parse_args()
    c = get_config()
    c.context.show_render = False
    c.eval.every = 0
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(c, workdir)
        rc = trainer.run_config
        steps = [sum(trainer.examples(step, *trainer._draw_tasks(rc.sft.examples_per_step)), [])
                 for step in range(args.steps)]
        trainer.close()
    width = max(len(e.prompt.input_ids) + len(e.response) for s in steps for e in s)
    width = -(-width // 64) * 64
    layouts = {"packed": [pack_supervised(trainer.model_config, s, config=rc.sft,
                                          context=rc.context, slot_patches=0,
                                          target_images=False)[0] for s in steps],
               "padded": [padded(trainer, s, width) for s in steps]}
    state, times = trainer.state, {name: [] for name in layouts}
    for name, batches in layouts.items():  # compile each layout once
        state, metrics = trainer.train_step(state, batches[0])
        jax.block_until_ready(metrics)
    for _ in range(args.repeats):
        for index in range(args.steps):
            for name, batches in layouts.items():
                start = time.perf_counter()
                state, metrics = trainer.train_step(state, batches[index])
                jax.block_until_ready(metrics)
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    slots = {name: int(np.asarray(b[0].sequences.mask).size) for name, b in layouts.items()}
    fill = {name: float(np.mean([np.asarray(b.sequences.mask).mean() for b in batches]))
            for name, batches in layouts.items()}
    for name in layouts:
        print(f"{name:6s}: {med[name]:.3f} s/step (median of {len(times[name])}), "
              f"{slots[name]} token slots, {fill[name]:.0%} real tokens")
    ratio = med["packed"] / med["padded"]
    print(f"packed / padded: {ratio:.2f}x the time ({1 / ratio:.2f}x faster); "
          f"peak RSS {peak_rss_mb():.0f} MiB")
    print(json.dumps({"benchmark": "sft_step", "ours": med["packed"], "baseline": med["padded"],
                      "ratio": ratio, "unit": "s/step", "slots": slots, "fill": fill,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
