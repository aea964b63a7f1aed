"""Turn how a sandboxed run ended into the start of a Feedback (the judging is the env's).

Runners (chart, python-pptx, ...) report a JSON result `{"ok": bool, "error": ExecError json |
absent, "timings": {...}}` plus domain-specific artifacts (a scene, a trace, a deck, a render).
That JSON comes from the process that ran model code, so it is only data here: a malformed
result becomes an ok=False Feedback naming the problem, never an exception, and nothing in it
is taken as a verdict: defects, elements and rewards are computed by the env, outside.
Never imports jax.
"""
from __future__ import annotations

from typing import Any

from envs.feedback import ExecError, Feedback
from envs.sandbox import SandboxResult


def feedback_from_run(run: SandboxResult, timings: dict[str, float] | None = None) -> Feedback:
    """ok=True with the run's streams and timings when the runner succeeded; else a failure."""
    times = {**(timings or {}), "sandbox_wall_s": run.wall_s, "sandbox_cpu_s": run.cpu_s}
    streams = {"stdout": run.stdout, "stderr": run.stderr}
    if not run.ok:
        return Feedback.failure(run.error, reward_parts={"exec": 0.0}, timings=times, **streams)
    result = run.result or {}
    try:
        for key, value in (result.get("timings") or {}).items():
            times[f"run_{key}"] = float(value)
        if not result.get("ok"):
            error = ExecError.from_json(result["error"])
            error = ExecError(str(error.type)[:100], str(error.message)[:4000],
                              None if error.line is None else int(error.line))
            return Feedback.failure(error, reward_parts={"exec": 0.0}, timings=times, **streams)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        return protocol_failure(f"the run's result is malformed ({err})", times, **streams)
    return Feedback(ok=True, timings=times, **streams)


def protocol_failure(what: str, timings: dict[str, float] | None = None,
                     **streams: str) -> Feedback:
    """A run whose artifacts cannot be judged as reported (malformed, forged or inconsistent)."""
    return Feedback.failure(ExecError("ProtocolError", f"{what}; programs must not tamper with the "
                                                       "runner or its results"),
                            reward_parts={"exec": 0.0}, timings=timings, **streams)


def domain_result(run: SandboxResult, key: str) -> Any:
    """A runner's domain-specific result entry (e.g. the chart's scene), or None."""
    return (run.result or {}).get(key) if run.ok else None
