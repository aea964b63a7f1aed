"""What a detector reports before tracing: a defect found on the render, naming the rendered
elements (records of the domain's layout) it involves, so tracing can turn those into code lines.

Shared by the page, HTML-slide and pptx detectors. Never imports jax.
"""
from __future__ import annotations

import dataclasses

from envs.geometry import Box


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    severity: float
    region: Box
    message: str
    records: tuple[int, ...]  # indices into the domain's element records; traced to lines later
    advisory: bool = False  # a note for the feedback, not a defect (see envs.feedback.Defect)
