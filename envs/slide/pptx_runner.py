"""The python-pptx runner for the project sandbox (`envs.sandbox.Sandbox("envs.slide.pptx_runner")`).

`preload()` runs once in the warm sandbox server: imports python-pptx and installs the shape
tracing hooks (envs/slide/pptx_trace.py), so every forked run starts hot.

`run(code, request)` executes the program under the hooks; every `Presentation.save` goes to
deck.pptx in the run's working dir, and a deck that was built but never saved is saved after
the run. Result: {"ok", "error", "trace": [[slide, shape_id, {created, edited}], ...]} plus the
"deck.pptx" artifact. The environment never trusts this process for geometry: it re-reads the
deck itself, so a hostile program can at worst garble its own line attribution.
Never imports jax; only runs inside a sandbox child.
"""
from __future__ import annotations

import os
import time
from typing import Any

from envs.slide import pptx_trace

_TRACER = pptx_trace.Tracer()
DECK = "deck.pptx"


def preload() -> None:
    import pptx  # noqa: F401
    import pptx.chart.xmlwriter  # noqa: F401  (chart programs import it lazily otherwise)
    import pptx.enum.shapes  # noqa: F401
    import PIL.Image  # noqa: F401
    pptx_trace.install(_TRACER)


def run(code: str, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    from envs.feedback import ExecError
    from envs.program import run_program

    start = time.perf_counter()
    path = os.path.join(os.getcwd(), DECK)
    _TRACER.reset(code, path)
    error = run_program(code)
    if error is None and not _TRACER.saved and _TRACER.presentations:
        try:
            _TRACER.presentations[-1].save(path)
        except Exception as err:  # noqa: BLE001 - a deck the program left unsaveable
            error = ExecError(type(err).__name__, f"saving the deck failed: {err}"[:2000])
    if error is None and not os.path.isfile(path):
        error = ExecError("NoPresentation", "the program created no Presentation: build one with "
                                            "pptx.Presentation() and add slides to it")
    timings = {"exec_s": time.perf_counter() - start}
    if error is not None:
        return {"ok": False, "error": error.to_json(), "timings": timings}, {}
    trace = [[slide, shape, _TRACER.lines_for((slide, shape))]
             for slide, shape in sorted(set(_TRACER.created) | set(_TRACER.edited))]
    with open(path, "rb") as f:
        deck = f.read()
    return {"ok": True, "trace": trace, "timings": timings}, {DECK: deck}
