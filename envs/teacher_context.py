"""The teacher's privileged text context from a Feedback: the error log of a failed run, or a
compact defect table (kind, where, lines, message) of a rendered one.

Deterministic: the same Feedback always gives the same text (defects ordered by severity, then
kind, then position; numbers rounded), so teacher prompts are reproducible and cacheable. The
render itself travels as an image next to this text (sdpo_jax builds the prompt).

    text = teacher_context(feedback)                  # markdown table (default)
    text = teacher_context(feedback, style="json")    # the "rubric channel" as JSON
Never imports jax.
"""
from __future__ import annotations

import json

from envs.feedback import Defect, Feedback, LineSpan

STYLES = ("table", "json")


def teacher_context(feedback: Feedback, *, style: str = "table", max_defects: int = 12,
                    max_log_chars: int = 1500) -> str:
    """See the module docstring. `max_defects` caps the table; the rest is counted."""
    if style not in STYLES:
        raise ValueError(f"teacher context style must be one of {STYLES}, got {style!r}")
    if not feedback.ok:
        return _failure_text(feedback, max_log_chars)
    defects = sorted(feedback.defects, key=lambda d: (-round(d.severity, 3), d.kind, tuple(d.region)))
    shown, hidden = defects[:max_defects], len(defects) - min(len(defects), max_defects)
    if style == "json":
        return json.dumps({"ok": True, "render_size": feedback.render_size,
                           "defects": [_row(d, feedback.render_size) for d in shown],
                           "more_defects": hidden}, sort_keys=True, ensure_ascii=False)
    size = f"{feedback.render_size[0]}x{feedback.render_size[1]} px" if feedback.render_size else "the render"
    if not defects:
        return f"Your program ran and rendered {size}; no visual defects were detected."
    lines = [f"Your program ran and rendered {size}. Visual defects found (most severe first):",
             "| # | kind | severity | where | lines | message |", "|---|---|---|---|---|---|"]
    for i, defect in enumerate(shown, 1):
        row = _row(defect, feedback.render_size)
        lines.append(f"| {i} | {row['kind']} | {row['severity']:.2f} | {row['where']} | "
                     f"{row['lines'] or '-'} | {row['message'].replace('|', '/')} |")
    if hidden:
        lines.append(f"({hidden} more defects not shown)")
    return "\n".join(lines)


def _failure_text(feedback: Feedback, max_log_chars: int) -> str:
    error = feedback.error
    lines = ["Your program failed and produced no render."]
    if error is not None:
        where = f" (line {error.line})" if error.line is not None else ""
        lines.append(f"Error{where}: {error.type}: {error.message}")
    log = (feedback.stderr or "").strip()
    if log:
        tail = log[-max_log_chars:]
        lines.append(f"Error log{' (end)' if len(log) > max_log_chars else ''}:\n{tail}")
    return "\n".join(lines)


def _row(defect: Defect, size: tuple[int, int] | None) -> dict:
    x0, y0, x1, y1 = (int(round(v)) for v in defect.region)
    return {"kind": defect.kind, "severity": round(defect.severity, 2),
            "where": f"{_place(defect.region, size)}({x0},{y0})-({x1},{y1})",
            "lines": format_spans(defect.lines), "message": defect.message}


def _place(region, size: tuple[int, int] | None) -> str:
    """A coarse word for where a region sits ("top-left ", "centre ", ...), empty without a size."""
    if not size or size[0] <= 0 or size[1] <= 0:
        return ""
    cx, cy = (region[0] + region[2]) / 2 / size[0], (region[1] + region[3]) / 2 / size[1]
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre " if (vertical, horizontal) == ("middle", "centre") else f"{vertical}-{horizontal} "


def format_spans(spans: tuple[LineSpan, ...]) -> str:
    """(3, 3), (7, 9) -> "3, 7-9"."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
