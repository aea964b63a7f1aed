"""Sandbox child for python-pptx programs: walls up, tracing on, run, save, write the trace.

`python -m envs.slide.pptx_child WORKDIR CPU_SECONDS MEMORY_BYTES` runs WORKDIR/program.py as
"<gen>" with rlimits and the audit guard of envs/isolation.py (no network, no processes, writes
only inside WORKDIR), saves the deck to WORKDIR/deck.pptx (every `Presentation.save` is
redirected there; a deck never saved is saved after the run), and writes WORKDIR/trace.json:
{"error": null | {type, message, line}, "trace": [[slide, shape_id, {created, edited}], ...]}.
The parent never trusts this process for geometry (it re-reads deck.pptx itself): a hostile
program can at worst garble its own line attribution. Never imports jax.
"""
from __future__ import annotations

import json
import os
import sys
import traceback


def _gen_line(tb) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == "<gen>":
            line = lineno
    return line


def main() -> None:
    workdir, cpu_seconds, memory_bytes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    os.chdir(workdir)
    from envs import isolation
    isolation.die_with_parent(os.getppid())
    isolation.apply_rlimits(cpu_seconds=cpu_seconds, address_space_bytes=memory_bytes,
                            file_size_bytes=64 << 20, max_processes=None)
    code = open("program.py", encoding="utf-8", errors="replace").read()
    import pptx  # noqa: F401  (imported before the guard: its own imports read many files)
    import pptx.chart.xmlwriter  # noqa: F401
    from envs.slide import pptx_trace
    tracer = pptx_trace.Tracer(code, os.path.join(workdir, "deck.pptx"))
    pptx_trace.install(tracer)
    out = open("trace.json", "w", encoding="utf-8")  # opened before the guard, written after
    sys.addaudithook(isolation.make_audit_guard(workdir, block_network=True))
    error = None
    try:
        exec(compile(code, "<gen>", "exec", dont_inherit=True), {"__name__": "__main__"})
    except SyntaxError as err:
        error = {"type": type(err).__name__, "message": str(err.msg)[:2000], "line": err.lineno}
    except BaseException as err:  # noqa: BLE001  model code may raise anything, SystemExit too
        error = {"type": type(err).__name__, "message": str(err)[:2000],
                 "line": _gen_line(err.__traceback__)}
    try:
        if not tracer.saved and tracer.presentations:
            tracer.presentations[-1].save(tracer.output_path)
    except BaseException as err:  # noqa: BLE001
        error = error or {"type": type(err).__name__, "message": f"saving the deck failed: {err}"[:2000],
                          "line": None}
    trace = [[slide, shape, tracer.lines_for((slide, shape))]
             for slide, shape in sorted(set(tracer.created) | set(tracer.edited))]
    json.dump({"error": error, "saved": tracer.saved, "trace": trace}, out)
    out.close()
    os._exit(0)


if __name__ == "__main__":
    main()
