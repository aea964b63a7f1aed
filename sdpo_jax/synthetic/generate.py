"""Seeded generation of synthetic chart tasks: (split, index) -> ChartSpec, a pure function.

Splits are disjoint by construction: a spec belongs to the split its content hash falls in
(test 10%, validation 10%, train 80% of hash buckets), and `generate_spec(split, index)` draws
from the seed stream (split, index, attempt) until it meets a spec of its own split. So no task
appears in two splits, whatever indices are used, and every index of every split is valid.

The generator keeps every defect lever away from its threshold (`levers`): tick labels either
fit their slots with room to spare or clearly overrun them, the data leaves the upper corner on
its low side empty and fills the one on its peak side, titles are short (<= 32 characters) or
clearly too long for 20 pt (44-54), colours are dark or pale, a pie slice pulled out 0.5 radii
clearly leaves its axes and never points at the title. Plain Python and numpy: never imports jax.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from sdpo_jax.synthetic import banks
from sdpo_jax.synthetic.levers import (CARELESS_EXPLODE, explode_overflow, label_crowding,
                                       wedge_angles)
from sdpo_jax.synthetic.spec import KINDS, ChartSpec, Series

SPLITS = ("train", "validation", "test")
_BUCKETS = 10  # hash buckets: 0 test, 1 validation, the rest train
LONG_LABEL_SHARE = 0.6
LONG_TITLE_SHARE = 0.4
PALE_SHARE = 0.35
MISSING_SHARE = 0.3
CROWDING_MARGIN = (0.75, 1.3)  # crowding between these is too close to call: redrawn
EXPLODE_MARGIN = (0.05, 0.16)  # careless-explode overflow around OVERFLOW_SHARE: redrawn
TOP_CLEARANCE_DEGREES = 45.0  # no highlighted slice points closer than this to 12 o'clock
MAX_VALUES = 16  # values of a categorical chart (series x categories): keeps programs short
SHORT_TITLE_CHARS = (8, 32)
LONG_TITLE_CHARS = (44, 54)


def split_of(spec: ChartSpec) -> str:
    """The split a spec belongs to, from the hash of its content."""
    canonical = json.dumps(spec.to_json(), sort_keys=True, ensure_ascii=False)
    bucket = int(hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8], 16) % _BUCKETS
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def generate_spec(split: str, index: int) -> ChartSpec:
    """Task `index` of `split`; the same arguments always give the same spec."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if index < 0:
        raise ValueError(f"task index must be >= 0, got {index}")
    attempt = 0
    while True:
        rng = np.random.default_rng([SPLITS.index(split), index, attempt])
        spec = draw_spec(rng)
        if split_of(spec) == split:
            return spec
        attempt += 1


def draw_spec(rng: np.random.Generator) -> ChartSpec:
    """One spec of a uniformly drawn chart kind."""
    kind = KINDS[rng.integers(len(KINDS))]
    draw = {"bar": _bar, "grouped_bar": _trend_chart, "line": _trend_chart, "scatter": _scatter,
            "pie": _pie}[kind]
    while True:
        spec = draw(rng, kind)
        if spec is not None:
            return spec


def _pick(rng: np.random.Generator, options: Sequence):
    return options[rng.integers(len(options))]


def _title(rng: np.random.Generator, short: Sequence[str], long: Sequence[str],
           **fields) -> str | None:
    """A title from the templates, short or (LONG_TITLE_SHARE) long; None if none fits its band."""
    is_long = rng.random() < LONG_TITLE_SHARE
    low, high = LONG_TITLE_CHARS if is_long else SHORT_TITLE_CHARS
    fields = {**fields, "year": int(rng.integers(2015, 2025))}
    fields.update({k.capitalize(): v[:1].upper() + v[1:] for k, v in fields.items()
                   if isinstance(v, str)})
    for i in rng.permutation(len(long if is_long else short)):
        title = (long if is_long else short)[i].format(**fields)
        if low <= len(title) <= high:
            return title
    return None


def _colors(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct series colours; the first is pale with probability PALE_SHARE, the rest dark."""
    dark = [banks.DARK_COLORS[i] for i in rng.permutation(len(banks.DARK_COLORS))[:count]]
    if rng.random() < PALE_SHARE:
        dark[0] = _pick(rng, banks.PALE_COLORS)
    return dark


def _categories(rng: np.random.Generator) -> tuple[banks.CategoryBank, tuple[str, ...]] | None:
    """A bank and 3-8 of its labels (long ones: 6-8, enough to crowd), None when their crowding
    is too close to call."""
    bank = _pick(rng, banks.CATEGORY_BANKS)
    long = bool(bank.long) and rng.random() < LONG_LABEL_SHARE
    pool = bank.long if long else bank.short
    count = int(rng.integers(6 if long else 3, min(8, len(pool)) + 1))
    if bank.ordered:
        start = int(rng.integers(len(pool) - count + 1))
        labels = pool[start:start + count]
    else:
        labels = tuple(pool[i] for i in rng.permutation(len(pool))[:count])
    crowding = label_crowding(labels)
    return None if CROWDING_MARGIN[0] < crowding < CROWDING_MARGIN[1] else (bank, labels)


def _scale(rng: np.random.Generator) -> float:
    return float(_pick(rng, (20, 50, 100, 200, 500, 1000)) * rng.uniform(0.6, 1.0))


def _trend(rng: np.random.Generator, positions: np.ndarray, peak_right: bool,
           top: float) -> np.ndarray:
    """Values rising towards the peak side: on the low side's first third of the range at most
    0.63 of `top` (0.4 + 0.6 * 0.34, plus 3% noise), so a legend there has room; `top` (within
    3%) at the peak end, so a legend there hides data."""
    t = positions if peak_right else 1.0 - positions
    low = rng.uniform(0.15, 0.4)
    values = top * (low + (1.0 - low) * t ** rng.uniform(1.0, 2.0))
    values *= rng.uniform(0.97, 1.03, len(t))
    return np.maximum(1, np.round(values)).astype(int)


def _with_missing(rng: np.random.Generator, values: list[int]) -> list[int | None]:
    """Values with one interior value (never the series' highest) made missing."""
    inner = [i for i in range(1, len(values) - 1) if values[i] != max(values)]
    if inner:
        values = list(values)
        values[inner[rng.integers(len(inner))]] = None
    return values


def _categorical(rng: np.random.Generator):
    """What bar, grouped bar and line charts share: categories, measure and title (None when
    the draw must be redone)."""
    picked = _categories(rng)
    if picked is None:
        return None
    bank, labels = picked
    y_label, measure = _pick(rng, banks.MEASURES)
    title = _title(rng, banks.SHORT_TITLES, banks.LONG_TITLES, measure=measure, noun=bank.noun)
    return None if title is None else (bank, labels, y_label, title)


def _bar(rng: np.random.Generator, kind: str) -> ChartSpec | None:
    drawn = _categorical(rng)
    if drawn is None:
        return None
    bank, labels, y_label, title = drawn
    top = _scale(rng)
    values = [int(v) for v in np.round(top * rng.uniform(0.15, 1.0, len(labels))).clip(1)]
    if rng.random() < MISSING_SHARE:
        values = _with_missing(rng, values)
    series = Series(y_label, _colors(rng, 1)[0], tuple(values))
    return ChartSpec(kind, title, bank.axis, y_label, labels, (series,))


def _trend_chart(rng: np.random.Generator, kind: str) -> ChartSpec | None:
    """Grouped bars or lines: 2-3 series (lines: 1-3; at most MAX_VALUES values in all) sharing
    a trend towards one side."""
    drawn = _categorical(rng)
    if drawn is None:
        return None
    bank, labels, y_label, title = drawn
    count = min(int(rng.integers(2 if kind == "grouped_bar" else 1, 4)), MAX_VALUES // len(labels))
    names = _pick(rng, banks.SERIES_NAMES)[:count]
    peak_right, top = bool(rng.random() < 0.5), _scale(rng)
    positions = np.linspace(0.0, 1.0, len(labels))
    columns = [[int(v) for v in _trend(rng, positions, peak_right, top * rng.uniform(0.8, 1.0))]
               for _ in names]
    missing = int(rng.integers(count)) if rng.random() < MISSING_SHARE else None
    series = tuple(Series(name, color, tuple(_with_missing(rng, v) if i == missing else v))
                   for i, (name, color, v) in enumerate(zip(names, _colors(rng, count), columns)))
    return ChartSpec(kind, title, bank.axis, y_label, labels, series)


def _scatter(rng: np.random.Generator, kind: str) -> ChartSpec | None:
    """2-3 groups of 4-6 points sharing a trend; the peak series holds the extreme point."""
    x_label, y_label = _pick(rng, banks.SCATTER_AXES)
    title = _title(rng, banks.SHORT_SCATTER_TITLES, banks.LONG_SCATTER_TITLES, x=x_label,
                   y=y_label)
    if title is None:
        return None
    count = int(rng.integers(2, 4))
    names = _pick(rng, banks.SCATTER_GROUPS)[:count]
    peak_right, top = bool(rng.random() < 0.5), _scale(rng)
    span = int(_pick(rng, (10, 20, 50, 100)))
    peak_series = int(rng.integers(count))
    missing = int(rng.integers(count)) if rng.random() < MISSING_SHARE else None
    series = []
    for i, (name, color) in enumerate(zip(names, _colors(rng, count))):
        xs = np.sort(rng.choice(np.arange(1, span), int(rng.integers(4, 7)), replace=False))
        if i == peak_series:
            xs[-1 if peak_right else 0] = span if peak_right else 0
        ys = [int(v) for v in _trend(rng, xs / span, peak_right, top if i == peak_series
                                     else top * rng.uniform(0.8, 0.95))]
        values = _with_missing(rng, ys) if i == missing else ys
        series.append(Series(name, color, tuple(values), tuple(int(x) for x in xs)))
    return ChartSpec(kind, title, x_label, y_label, (), tuple(series))


def _pie(rng: np.random.Generator, kind: str) -> ChartSpec | None:
    """3-6 slices of at least 8% each, one highlighted to be pulled out."""
    thing, pool = _pick(rng, banks.PIE_BANKS)
    title = _title(rng, banks.SHORT_PIE_TITLES, banks.LONG_PIE_TITLES, thing=thing)
    if title is None:
        return None
    count = int(rng.integers(3, min(6, len(pool)) + 1))
    labels = tuple(pool[i] for i in rng.permutation(len(pool))[:count])
    shares = 8 + (100 - 8 * count) * rng.dirichlet(np.full(count, 2.0))
    values = [int(v) for v in np.floor(shares)]
    values[int(np.argmax(shares))] += 100 - sum(values)
    if rng.random() < MISSING_SHARE:
        values[int(rng.integers(count))] = None
    # a slice pulled out upwards would push its label into the title: highlight another one
    sideways = [i for i, (first, last) in wedge_angles(values).items()
                if abs((first + last) / 2 % 360.0 - 90.0) > TOP_CLEARANCE_DEGREES]
    if not sideways:
        return None
    highlight = sideways[rng.integers(len(sideways))]
    spec = ChartSpec(kind, title, "", "", labels, (Series(thing, None, tuple(values)),),
                     highlight=highlight)
    overflow = explode_overflow(spec, CARELESS_EXPLODE)
    return None if EXPLODE_MARGIN[0] < overflow < EXPLODE_MARGIN[1] else spec
