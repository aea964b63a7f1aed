"""What one synthetic chart task asks for, as plain data: the chart kind, its texts and its data.

A `ChartSpec` is everything the instruction states and everything the program writer needs; it
round-trips through JSON (`to_json` / `from_json`) so a JSONL record can rebuild any careless
variant of its program later. Plain Python: never imports jax or matplotlib.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

KINDS = ("bar", "grouped_bar", "line", "scatter", "pie")
CATEGORICAL_KINDS = ("bar", "grouped_bar", "line")  # one tick label per category on the x axis
LEGEND_KINDS = ("grouped_bar", "line", "scatter")  # one legend entry per series


@dataclasses.dataclass(frozen=True)
class Series:
    """One data series: its name, its colour (#rrggbb; None for a pie, whose slices take
    matplotlib's default colours) and its values (None: a missing value, written "n/a" in the
    instruction). Scatter series also hold their x values."""

    name: str
    color: str | None
    values: tuple[int | None, ...]
    x: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class ChartSpec:
    """One chart-to-code task. `categories` are the x-axis categories (bar, grouped_bar, line)
    or the slice labels (pie, one series); scatter has none. `highlight` is the pie slice the
    instruction asks to pull out."""

    kind: str
    title: str
    x_label: str
    y_label: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    highlight: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"ChartSpec.kind must be one of {KINDS}, got {self.kind!r}")
        if not self.series:
            raise ValueError(f"a {self.kind} ChartSpec needs at least one series")
        for s in self.series:
            scatter = self.kind == "scatter" and s.x is not None
            expected = len(s.x) if scatter else len(self.categories)
            if len(s.values) != expected:
                raise ValueError(f"series {s.name!r} has {len(s.values)} values for {expected} "
                                 f"{'points' if self.kind == 'scatter' else 'categories'}")
        if self.kind == "pie" and (len(self.series) != 1 or self.highlight is None):
            raise ValueError("a pie ChartSpec has exactly one series and a highlighted slice")

    @property
    def missing(self) -> tuple[int, int] | None:
        """(series index, value index) of the missing value, if the data has one."""
        for i, s in enumerate(self.series):
            if None in s.values:
                return i, s.values.index(None)
        return None

    def to_json(self) -> dict[str, Any]:
        """JSON-native (lists, not tuples), so a record equals its own JSON round trip."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ChartSpec":
        series = tuple(Series(name=s["name"], color=s["color"], values=tuple(s["values"]),
                              x=None if s.get("x") is None else tuple(s["x"]))
                       for s in data["series"])
        return cls(kind=data["kind"], title=data["title"], x_label=data["x_label"],
                   y_label=data["y_label"], categories=tuple(data["categories"]), series=series,
                   highlight=data.get("highlight"))
