"""Defect levers: careless but plausible choices a code model makes when writing a chart, each
owning one statement of the program and causing one defect kind the chart env detects there.

lever (effect): careless choice / clean choice / when the careless choice is defective
- tick_rotation (overlap): tick labels left horizontal / rotated 30 degrees when they crowd /
  the labels are wider than their slots
- legend_loc (legend_over_data): legend always "upper right" / the upper corner the data leaves
  empty / the data peaks on the right
- title_size (clipped_text): title at fontsize=20 / the default size / the title is too long
  for 20 pt
- label_color (low_contrast): y label in the first series' colour / the default (black) / that
  colour is pale
- explode (overflow): the highlighted pie slice pulled out 0.5 / pulled out 0.1 / the slice
  then leaves the pie's axes (nearly always)
- missing_value (error): a missing value dropped from its list / written np.nan (pie: the
  slice left out) / the data has a missing value

Whether a careless choice is defective depends on the task (label lengths and count, where the
data peaks, the title's length, the series colour; a missing value exists only in some tasks),
so a policy has to read the task to choose well; the clean choice is clean on every task the
generator makes. The pie's pull-out is the exception: 0.5 radii push nearly every slice the
generator highlights (never one pointing at the title) out of the pie's axes, 0.1 never does.
The predicates here are the ground truth the generator keeps away from (its margins) and the
tests measure the env against. Plain Python and numpy: never imports jax or matplotlib.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from envs.color import WHITE, contrast_ratio
from envs.geometry import fraction_outside
from sdpo_jax.synthetic.spec import CATEGORICAL_KINDS, LEGEND_KINDS, ChartSpec

ERROR = "error"  # the effect of a lever that makes the program fail: Feedback.ok is False

# Layout facts of the chart env's default canvas (640 x 480 px at 100 dpi) that the predicates
# rest on: a 10 pt tick-label character is about 6.3 px wide, the plot area about 540 px wide
# after tight_layout, and a 20 pt title fits in the figure up to about 40 characters.
CHAR_PX = 6.3
PLOT_WIDTH_PX = 540.0
TITLE_CHARS_AT_20PT = 40
PALE_CONTRAST = 4.5  # WCAG AA for 10 pt text on white: paler colours are low contrast
PIE_LIMIT = 1.25  # matplotlib's pie sets its axes limits to +-1.25 radii
OVERFLOW_SHARE = 0.1  # the chart env's overflow_axes_min: share of a mark outside its axes
CLEAN_EXPLODE = 0.1
CARELESS_EXPLODE = 0.5


@dataclasses.dataclass(frozen=True)
class Lever:
    """One careless choice: the defect kind it causes (or ERROR), which tasks have its
    statement, and on which of them the careless choice is actually defective."""

    name: str
    effect: str
    applies: Callable[[ChartSpec], bool]
    defective: Callable[[ChartSpec], bool]


def label_crowding(categories: Sequence[str]) -> float:
    """Width of the widest neighbouring pair of tick labels over their slot width (> 1: the
    unrotated labels run into each other)."""
    widths = [CHAR_PX * len(c) for c in categories]
    slot = PLOT_WIDTH_PX / len(widths)
    return max((a + b) / 2 for a, b in zip(widths, widths[1:])) / slot


def labels_crowd(spec: ChartSpec) -> bool:
    return spec.kind in CATEGORICAL_KINDS and label_crowding(spec.categories) > 1.0


def peak_side(spec: ChartSpec) -> str:
    """"left" or "right": the half of the x range holding the highest value of any series."""
    best, side = -math.inf, "left"
    for s in spec.series:
        positions = s.x if s.x is not None else range(len(s.values))
        lo, hi = min(positions), max(positions)
        for at, value in zip(positions, s.values):
            if value is not None and value > best:
                best, side = value, "right" if (at - lo) / max(hi - lo, 1) > 0.5 else "left"
    return side


def clean_legend_loc(spec: ChartSpec) -> str:
    """The upper corner away from the peak: the generator keeps the data low there."""
    return "upper left" if peak_side(spec) == "right" else "upper right"


def is_pale(color: str) -> bool:
    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    return contrast_ratio(rgb, WHITE) < PALE_CONTRAST


def wedge_angles(values: Sequence[int | None]) -> dict[int, tuple[float, float]]:
    """(first, last) angle in degrees of each drawn pie slice, as `ax.pie(startangle=90,
    counterclock=False)` draws them: clockwise from 12 o'clock, missing slices left out."""
    drawn = [(i, v) for i, v in enumerate(values) if v is not None]
    total, start, angles = sum(v for _, v in drawn), 90.0, {}
    for i, v in drawn:
        angles[i] = (start - 360.0 * v / total, start)
        start = angles[i][0]
    return angles


def explode_overflow(spec: ChartSpec, explode: float) -> float:
    """Share of the highlighted pie wedge's box outside the pie's axes once pulled out by
    `explode` radii."""
    first, last = wedge_angles(spec.series[0].values)[spec.highlight]
    angles = np.radians(np.linspace(first, last, 91))
    middle = math.radians((first + last) / 2)
    centre = explode * np.array([math.cos(middle), math.sin(middle)])
    xs = np.concatenate([[centre[0]], centre[0] + np.cos(angles)])
    ys = np.concatenate([[centre[1]], centre[1] + np.sin(angles)])
    return fraction_outside((xs.min(), ys.min(), xs.max(), ys.max()),
                            (-PIE_LIMIT, -PIE_LIMIT, PIE_LIMIT, PIE_LIMIT))


LEVERS: dict[str, Lever] = {lever.name: lever for lever in (
    Lever("tick_rotation", "overlap", lambda s: s.kind in CATEGORICAL_KINDS, labels_crowd),
    Lever("legend_loc", "legend_over_data", lambda s: s.kind in LEGEND_KINDS,
          lambda s: s.kind in LEGEND_KINDS and peak_side(s) == "right"),
    Lever("title_size", "clipped_text", lambda s: True,
          lambda s: len(s.title) > TITLE_CHARS_AT_20PT),
    Lever("label_color", "low_contrast", lambda s: s.kind != "pie",
          lambda s: s.kind != "pie" and is_pale(s.series[0].color)),
    Lever("explode", "overflow", lambda s: s.kind == "pie",
          lambda s: s.kind == "pie" and explode_overflow(s, CARELESS_EXPLODE) > OVERFLOW_SHARE),
    Lever("missing_value", ERROR, lambda s: s.missing is not None,
          lambda s: s.missing is not None),
)}


def applicable(spec: ChartSpec) -> list[str]:
    """Levers whose statement this task's program has, in table order."""
    return [name for name, lever in LEVERS.items() if lever.applies(spec)]


def defective(spec: ChartSpec) -> list[str]:
    """Levers whose careless choice is defective on this task."""
    return [name for name, lever in LEVERS.items() if lever.defective(spec)]


def sample_careless(spec: ChartSpec, probability: float | Mapping[str, float],
                    rng: np.random.Generator) -> frozenset[str]:
    """The careless prior: each applicable lever careless, independently, with `probability`
    (one number for all, or a probability per lever name; unnamed levers stay clean)."""
    chances = (dict(probability) if isinstance(probability, Mapping)
               else dict.fromkeys(LEVERS, probability))
    unknown = sorted(set(chances) - set(LEVERS))
    bad = {name: p for name, p in chances.items() if not 0.0 <= p <= 1.0}
    if unknown or bad:
        raise ValueError(f"careless probabilities must name levers {sorted(LEVERS)} with values in "
                         f"[0, 1]; unknown {unknown}, out of range {bad}")
    draws = rng.random(len(LEVERS))  # one draw per lever, so the stream does not depend on the task
    return frozenset(name for name, draw in zip(LEVERS, draws)
                     if LEVERS[name].applies(spec) and draw < chances.get(name, 0.0))
