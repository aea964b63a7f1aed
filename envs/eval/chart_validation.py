"""The chart env checked against real ChartMimic programs: does each run, and does each score
1.0 against itself (every ChartMimic reference program). Detection is checked by `envs.eval.chart_inject`.

Used by the slow test over all 397 programs and by benchmarks/chart_detection.py; `judge` is
anything that maps (task, code) items to Feedback (an env's step in a loop, or EnvPool.map).
Never imports jax.
"""
from __future__ import annotations

from collections.abc import Sequence

from envs.eval.chart_inject import Judge
from envs.task import Task


def self_scores(programs: Sequence[tuple[str, str]], judge: Judge) -> dict:
    """Exec rate and self-fidelity of programs [(id, code)], each scored against itself."""
    items = [(Task(domain="chart", task_id=pid, instruction="", target=code), code) for pid, code in programs]
    feedbacks = judge(items)
    failures = {pid: f"{fb.error.type}: {fb.error.message[:200]}"
                for (pid, _), fb in zip(programs, feedbacks) if not fb.ok}
    imperfect = {pid: {k: fb.reward_parts.get(k) for k in ("text", "layout", "type", "color")}
                 for (pid, _), fb in zip(programs, feedbacks)
                 if fb.ok and fb.reward_parts.get("fidelity") != 1.0}
    ran = len(programs) - len(failures)
    return {"programs": len(programs), "executed": ran,
            "exec_rate": ran / len(programs) if programs else 0.0,
            "self_fidelity_perfect": (ran - len(imperfect)) / ran if ran else 0.0,
            "failures": failures, "imperfect": imperfect}
