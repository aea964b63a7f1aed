"""A chart scene's claims checked against its render's pixels, by the judge.

The scene comes from the process that ran model code, which could have forged it (dropped the
defective elements, invented clean ones) or drawn something that hides what it claims (a white
rectangle over the whole figure). The pixels are decoded by the judge itself, so:

* visible: the share of claimed texts and data marks whose box shows ink (a covered or forged
  element shows none);
* explained: the share of the render's ink that lies in some claimed box (texts, axes, legends,
  marks, padded a little): ink nobody claims means elements were left out of the scene;
* substance: whether the render has ink at all and at least one data mark shows some: a blank,
  covered or data-less figure (axes without data) has none.

`score` = substance x ramp(visible) x ramp(explained): 1 for honest charts (whose claims sit on
their ink: over ChartMimic programs visible is >= 0.87 and explained >= 0.999), falling to 0
as claims leave the pixels (VISIBLE, EXPLAINED give each ramp's ends), 0 for empty or covered
renders. The chart env multiplies the cleanliness reward by it. A forgery that leaves out an
element holding only a few percent of the ink goes unnoticed: the judge checks claims, it
cannot rebuild the scene from pixels. Never imports jax.
"""
from __future__ import annotations

import dataclasses

from envs import pixels
from envs.chart.scene import ChartScene
from envs.reward import MIN_INK

VISIBLE = (0.5, 0.85)  # share of claimed elements showing ink: no trust .. full trust
EXPLAINED = (0.8, 0.97)  # share of the ink inside claimed boxes: no trust .. full trust


@dataclasses.dataclass(frozen=True)
class Verification:
    visible: float
    explained: float
    ink: float
    substance: bool

    @property
    def score(self) -> float:
        if not self.substance:
            return 0.0
        return _ramp(self.visible, VISIBLE) * _ramp(self.explained, EXPLAINED)


def _ramp(value: float, ends: tuple[float, float]) -> float:
    return min(1.0, max(0.0, (value - ends[0]) / (ends[1] - ends[0])))


def verify(scene: ChartScene) -> Verification:
    """See the module docstring."""
    mask = pixels.ink_mask(scene.image)
    ink = float(mask.mean()) if mask.size else 0.0
    claims = [t.box for t in scene.texts] + [m.box for m in scene.marks]
    shown = [pixels.shows_ink(mask, box) for box in claims]
    visible = sum(shown) / len(shown) if shown else 0.0
    boxes = claims + [a.box for a in scene.axes] + [lg.box for lg in scene.legends]
    data_shown = any(shown[len(scene.texts):])
    return Verification(visible=visible, explained=pixels.explained_share(mask, boxes), ink=ink,
                        substance=ink >= MIN_INK and data_shown)
