"""Turn how a sandboxed run ended into a Feedback (without the reward, which is the env's).

Runners (chart, python-pptx, ...) report a JSON result made of the shared contract's pieces:
`{"ok": bool, "error": ExecError json | absent, "defects": [Defect json], "elements":
[Element json], "render_size": [w, h], "timings": {...}}` plus domain-specific keys, and a
"render.png" artifact. That JSON comes from the process that ran model code, so it is checked
here: anything malformed becomes an ok=False Feedback naming the problem, never an exception.
Never imports jax.
"""
from __future__ import annotations

from typing import Any

from envs.feedback import Defect, Element, ExecError, Feedback
from envs.sandbox import SandboxResult

MAX_DEFECTS = 256
MAX_ELEMENTS = 5000


def feedback_from_run(run: SandboxResult, timings: dict[str, float] | None = None) -> Feedback:
    """ok=True with defects, elements and render when the runner succeeded; else a failure."""
    times = {**(timings or {}), "sandbox_wall_s": run.wall_s, "sandbox_cpu_s": run.cpu_s}
    streams = {"stdout": run.stdout, "stderr": run.stderr}
    if not run.ok:
        return Feedback.failure(run.error, reward_parts={"exec": 0.0}, timings=times, **streams)
    result = run.result or {}
    try:
        times.update({str(k): float(v) for k, v in (result.get("timings") or {}).items()})
        if not result.get("ok"):
            return Feedback.failure(ExecError.from_json(result["error"]), reward_parts={"exec": 0.0},
                                    timings=times, **streams)
        defects = [Defect.from_json(d) for d in result.get("defects", [])[:MAX_DEFECTS]]
        elements = [Element.from_json(e) for e in result.get("elements", [])[:MAX_ELEMENTS]]
        size = result.get("render_size")
        render_size = None if size is None else (int(size[0]), int(size[1]))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        return Feedback.failure(ExecError("ProtocolError", f"the run's result is malformed ({err}); "
                                                           "programs must not tamper with the runner"),
                                reward_parts={"exec": 0.0}, timings=times, **streams)
    return Feedback(ok=True, defects=defects, elements=elements, render_png=run.artifacts.get("render.png"),
                    render_size=render_size, timings=times, **streams)


def domain_result(run: SandboxResult, key: str) -> Any:
    """A runner's domain-specific result entry (e.g. the chart's fidelity recording), or None."""
    return (run.result or {}).get(key) if run.ok else None
