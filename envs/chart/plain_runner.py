"""The baseline chart runner: ChartMimic's own pipeline, nothing more (its execution step).

Deletes the program's first savefig/show call and everything after it, executes the rest, and
saves the current figure as PNG at the request's dpi. No tracing, no scene, no detectors, no
recording: the cost the chart runner (`envs.chart.runner`) is measured against in
benchmarks/env_chart.py, in the same sandbox. Never imports jax.
"""
from __future__ import annotations

import io
import re
from typing import Any

_CUT = re.compile(r"plt\.savefig\(.*|plt\.show\(.*", re.S)


def preload() -> None:
    from envs import program  # noqa: F401 - runs cannot import from envs/ (hidden from them)
    from envs.chart import compat, runner
    runner.import_libraries()
    compat.install()  # the same programs must run in both runners


def run(code: str, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    import matplotlib.pyplot as plt

    from envs.program import run_program  # imported by preload: the run cannot read envs/
    error = run_program(_CUT.sub("", code))
    if error is not None:
        return {"ok": False, "error": error.to_json()}, {}
    out = io.BytesIO()
    plt.gcf().savefig(out, format="png", dpi=int(request.get("dpi", 100)))
    return {"ok": True}, {"render.png": out.getvalue()}
