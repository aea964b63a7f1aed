"""The contract between environments and the trainer: Feedback, Defect, Element, ExecError.

Every environment returns a Feedback for every (task, code) pair, whatever the code does: a
failure is data (ok=False, an ExecError, zero executability reward), never an exception.
Line spans are 1-based and inclusive, in the coordinates of the code the model wrote.
This module never imports jax; it is plain data so it crosses process boundaries cheaply.
"""
from __future__ import annotations

import dataclasses
from typing import Any

LineSpan = tuple[int, int]
Box = tuple[float, float, float, float]

# The shared defect vocabulary; environments may add domain-specific kinds (e.g. legend_over_data).
DEFECT_KINDS = ("overlap", "clipped_text", "misalignment", "low_contrast", "overflow")


@dataclasses.dataclass(frozen=True)
class ExecError:
    """Why the program did not produce an artifact: exception type, message, and the model's line."""

    type: str
    message: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "line": self.line}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ExecError":
        return cls(type=d["type"], message=d["message"], line=d.get("line"))


@dataclasses.dataclass(frozen=True)
class Element:
    """A rendered element (text, patch, DOM node, shape...) with its pixel box and source lines."""

    kind: str
    region: Box
    lines: tuple[LineSpan, ...] = ()
    text: str | None = None
    color: str | None = None  # '#rrggbb' (foreground / text colour where it applies)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "region": [float(v) for v in self.region],
                "lines": [list(s) for s in self.lines], "text": self.text,
                "color": self.color, "attrs": self.attrs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Element":
        return cls(kind=d["kind"], region=tuple(d["region"]), lines=_spans(d.get("lines", ())),
                   text=d.get("text"), color=d.get("color"), attrs=dict(d.get("attrs") or {}))


@dataclasses.dataclass(frozen=True)
class Defect:
    """A visual defect: what, how bad (severity in [0,1]), where on the render, and which lines.

    `advisory`: a note, not a defect a person sees (text below the WCAG contrast line that is
    still easy to read); environments keep these in `Feedback.notes`, out of the defects, the
    reward and the defect rates."""

    kind: str
    severity: float
    region: Box
    message: str
    lines: tuple[LineSpan, ...] = ()
    advisory: bool = False

    def __post_init__(self):
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"Defect severity must be in [0, 1], got {self.severity} for {self.kind}")

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "severity": float(self.severity),
               "region": [float(v) for v in self.region], "message": self.message,
               "lines": [list(s) for s in self.lines]}
        if self.advisory:
            out["advisory"] = True
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Defect":
        return cls(kind=d["kind"], severity=float(d["severity"]), region=tuple(d["region"]),
                   message=d["message"], lines=_spans(d.get("lines", ())),
                   advisory=bool(d.get("advisory", False)))


def split_advisories(found: list[Defect]) -> tuple[list[Defect], list[Defect]]:
    """(defects, notes): what a detector found, the advisory notes set apart."""
    return [d for d in found if not d.advisory], [d for d in found if d.advisory]


@dataclasses.dataclass
class Feedback:
    """Everything an environment learned from one program: outcome, reward, defects, render."""

    ok: bool
    error: ExecError | None = None
    reward: float = 0.0
    reward_parts: dict[str, float] = dataclasses.field(default_factory=dict)
    defects: list[Defect] = dataclasses.field(default_factory=list)
    render_png: bytes | None = None
    elements: list[Element] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    render_size: tuple[int, int] | None = None  # (width, height) in pixels of render_png
    # Advisory notes (Defect.advisory): e.g. readable text below the WCAG contrast line, with its
    # ratio and threshold. Never in the reward, the defects or the defect rates.
    notes: list[Defect] = dataclasses.field(default_factory=list)
    stdout: str = ""
    stderr: str = ""

    def to_json(self, with_elements: bool = False) -> dict[str, Any]:
        """The stable JSON form (no PNG): the keys scripts rely on, see `python -m envs.check`."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "error": None if self.error is None else self.error.to_json(),
            "reward": float(self.reward),
            "reward_parts": {k: float(v) for k, v in self.reward_parts.items()},
            "defects": [d.to_json() for d in self.defects],
            "timings": {k: float(v) for k, v in self.timings.items()},
            "render_size": None if self.render_size is None else list(self.render_size),
            "notes": [d.to_json() for d in self.notes],
        }
        if with_elements:
            out["elements"] = [e.to_json() for e in self.elements]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], render_png: bytes | None = None) -> "Feedback":
        err = d.get("error")
        size = d.get("render_size")
        return cls(ok=bool(d["ok"]), error=None if err is None else ExecError.from_json(err),
                   reward=float(d.get("reward", 0.0)), reward_parts=dict(d.get("reward_parts", {})),
                   defects=[Defect.from_json(x) for x in d.get("defects", [])],
                   render_png=render_png,
                   elements=[Element.from_json(x) for x in d.get("elements", [])],
                   timings=dict(d.get("timings", {})),
                   render_size=None if size is None else (int(size[0]), int(size[1])),
                   notes=[Defect.from_json(x) for x in d.get("notes", [])])

    @classmethod
    def failure(cls, error: ExecError, *, reward_parts: dict[str, float] | None = None,
                timings: dict[str, float] | None = None, stdout: str = "",
                stderr: str = "") -> "Feedback":
        """A failed execution: ok=False, zero reward, the error for the teacher's context."""
        return cls(ok=False, error=error, reward=0.0, reward_parts=dict(reward_parts or {}),
                   timings=dict(timings or {}), stdout=stdout, stderr=stderr)


def _spans(raw) -> tuple[LineSpan, ...]:
    return tuple((int(a), int(b)) for a, b in raw)
