"""Run metrics: one JSONL line and one TensorBoard event per step, and PNG plots of the curves.

Only process 0 of a multi-host run writes (the caller passes `enabled=False` elsewhere). Values
must already be host floats: this module never touches device arrays, so logging never blocks
the device loop on a transfer it did not ask for.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence

# Curves worth a panel of their own in plots.png, when present; the held-out ones first: they
# answer "did the policy get better?".
DEFAULT_PLOT_KEYS = ("eval/defect_free_rate", "eval/exec_rate", "loss/total", "loss/distill",
                     "loss/grpo", "reward/mean", "env/exec_rate", "env/defects_per_rollout",
                     "credit/weight_max", "time/step_s")


class MetricsWriter:
    """Appends step metrics to `metrics.jsonl` and TensorBoard events under `workdir/tb`."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.workdir = workdir
        self.enabled = enabled
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            from tensorboardX import SummaryWriter  # light, no TensorFlow needed
            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in scalars.items()}
        with open(self.jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": int(step), **clean}, sort_keys=True) + "\n")
        for key, value in clean.items():
            if math.isfinite(value):
                self._tb.add_scalar(key, value, global_step=int(step))
        self._tb.flush()

    def truncate_after(self, step: int) -> None:
        """Drop lines past `step` (a resumed run rewrites them, so curves stay single-valued)."""
        if not self.enabled or not os.path.exists(self.jsonl_path):
            return
        keep = [line for line in open(self.jsonl_path, encoding="utf-8")
                if line.strip() and json.loads(line)["step"] <= step]
        with open(self.jsonl_path, "w", encoding="utf-8") as f:
            f.writelines(keep)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(jsonl_path: str) -> list[dict[str, float]]:
    with open(jsonl_path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_metrics(jsonl_path: str, out_png: str,
                 keys: Sequence[str] = DEFAULT_PLOT_KEYS) -> str | None:
    """Plot the curves in `keys` that the run logged into one PNG grid; returns its path."""
    rows = read_metrics(jsonl_path)
    present = [k for k in keys if any(k in r for r in rows)]
    if not rows or not present:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(present))
    nrows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        if pts:
            ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(present):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
