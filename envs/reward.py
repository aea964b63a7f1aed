"""Reward parts every domain shares. Never imports jax."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs import pixels
from envs.feedback import Defect

MIN_INK = 0.002  # a render with less ink than this share of its pixels is (nearly) empty


def cleanliness(defects: Sequence[Defect]) -> float:
    """1 for a clean render, falling with the summed severity of its defects."""
    return 1.0 / (1.0 + sum(d.severity for d in defects))


def ink_share(image: np.ndarray) -> float:
    """Share of the render's pixels that differ from its background colour."""
    mask = pixels.ink_mask(image)
    return float(mask.mean()) if mask.size else 0.0


def substance(image: np.ndarray) -> float:
    """1 when the render shows something, 0 when it is blank or nearly so: without a target an
    empty artifact would otherwise be the cleanest one, and so the best rewarded."""
    return 1.0 if ink_share(image) >= MIN_INK else 0.0
