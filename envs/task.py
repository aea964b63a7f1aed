"""What an environment is asked to render and judge: one Task per prompt.

The same Task travels to the env worker (pickled) and into the teacher's context, so it holds
only plain data: the instruction, the reference artifact (if any) and the canvas it is judged on.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from envs import registry


@dataclasses.dataclass(frozen=True)
class Task:
    """One prompt for the policy and the environment that judges its answer.

    target: the reference program (chart: matplotlib code; slide_pptx: python-pptx code) or page
      source (web, slide_html) the answer is compared with; None for open-ended tasks.
    width, height: the render canvas in pixels (charts: figure size x dpi).
    """

    domain: str
    task_id: str
    instruction: str
    target: str | None = None
    width: int = 640
    height: int = 480
    dpi: int = 100
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.domain not in registry.DOMAINS:
            raise ValueError(f"Task.domain must be one of {sorted(registry.DOMAINS)}, got "
                             f"{self.domain!r}")
        if self.width <= 0 or self.height <= 0 or self.dpi <= 0:
            raise ValueError(f"Task {self.task_id}: width, height, dpi must be positive, got "
                             f"{self.width}x{self.height}@{self.dpi}")
