"""Reward parts every domain shares. Never imports jax."""
from __future__ import annotations

from collections.abc import Sequence

from envs.feedback import Defect


def cleanliness(defects: Sequence[Defect]) -> float:
    """1 for a clean render, falling with the summed severity of its defects."""
    return 1.0 / (1.0 + sum(d.severity for d in defects))
