"""The program a synthetic chart task is answered with: the clean reference, or a variant in which
chosen defect levers take their careless choice.

    program = write_program(spec)                              # the reference
    program = write_program(spec, careless={"legend_loc"})     # one careless choice
    program.code, program.spans["legend_loc"]                  # (first, last) line, 1-based

Programs are short and idiomatic (pyplot, data literals, one plotting call per series, labels,
title, legend, tight_layout, savefig), one statement per line, so every lever owns exactly one
statement and its span is that line. The chart env stops at the first savefig and renders the
whole figure canvas. Plain Python: never imports jax or matplotlib.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from sdpo_jax.synthetic.levers import (CARELESS_EXPLODE, CLEAN_EXPLODE, LEVERS, applicable,
                                       clean_legend_loc, labels_crowd)
from sdpo_jax.synthetic.spec import CATEGORICAL_KINDS, LEGEND_KINDS, ChartSpec

LineSpan = tuple[int, int]
SAVE = 'plt.savefig("chart.png")'
CARELESS_LEGEND_LOC = "upper right"  # the habit: a fixed corner, whatever the data does
CARELESS_TITLE_SIZE = 20
TICK_ROTATION = 30
# Bar offsets and widths of a grouped bar chart, by the number of series.
_GROUPS = {2: ((-0.2, 0.2), 0.4), 3: ((-0.27, 0.0, 0.27), 0.27)}


@dataclasses.dataclass(frozen=True)
class Program:
    """A program and, for every lever it holds, the span of the statement that lever writes."""

    code: str
    spans: dict[str, LineSpan]


def write_program(spec: ChartSpec, careless: Iterable[str] = ()) -> Program:
    """The program for `spec` with the levers named in `careless` written carelessly; a lever the
    spec has no statement for (see `levers.applicable`) is refused."""
    careless = frozenset(careless)
    unknown = sorted(careless - set(LEVERS))
    if unknown:
        raise ValueError(f"unknown lever(s) {unknown}; known: {sorted(LEVERS)}")
    absent = sorted(careless - set(applicable(spec)))
    if absent:
        raise ValueError(f"lever(s) {absent} do not apply to this {spec.kind} task; choose among "
                         f"levers.applicable(spec) = {applicable(spec)}")
    out = _Writer(careless)
    out.add("import matplotlib.pyplot as plt")
    if spec.kind in CATEGORICAL_KINDS or (spec.missing is not None and spec.kind != "pie"):
        out.add("import numpy as np")
    out.add("")
    if spec.kind in CATEGORICAL_KINDS:
        out.add(f"categories = {_strings(spec.categories)}")
        out.add("x = np.arange(len(categories))")
    out.add("fig, ax = plt.subplots()")
    _plot_series(spec, out)
    if spec.kind in CATEGORICAL_KINDS:
        rotate = "tick_rotation" not in careless and labels_crowd(spec)
        rotation = f', rotation={TICK_ROTATION}, ha="right"' if rotate else ""
        out.add(f"ax.set_xticks(x, categories{rotation})", "tick_rotation")
    size = f", fontsize={CARELESS_TITLE_SIZE}" if "title_size" in careless else ""
    out.add(f"ax.set_title({string_literal(spec.title)}{size})", "title_size")
    if spec.kind != "pie":
        out.add(f"ax.set_xlabel({string_literal(spec.x_label)})")
        pale = "label_color" in careless
        color = f", color={string_literal(spec.series[0].color)}" if pale else ""
        out.add(f"ax.set_ylabel({string_literal(spec.y_label)}{color})", "label_color")
    if spec.kind in LEGEND_KINDS:
        loc = CARELESS_LEGEND_LOC if "legend_loc" in careless else clean_legend_loc(spec)
        out.add(f"ax.legend(loc={string_literal(loc)})", "legend_loc")
    out.add("fig.tight_layout()")
    out.add(SAVE)
    return Program("\n".join(out.lines) + "\n", out.spans)


class _Writer:
    """Program lines and, for each lever, the line of the statement it owns."""

    def __init__(self, careless: frozenset[str]):
        self.careless = careless
        self.lines: list[str] = []
        self.spans: dict[str, LineSpan] = {}

    def add(self, line: str, *levers: str) -> None:
        self.lines.append(line)
        for lever in levers:
            self.spans[lever] = (len(self.lines), len(self.lines))


def _plot_series(spec: ChartSpec, out: _Writer) -> None:
    """One plotting call per series (pie: one call); the call holding the missing value owns
    the `missing_value` lever: clean writes np.nan, careless drops the value."""
    drop = "missing_value" in out.careless
    missing = spec.missing
    if spec.kind == "pie":
        _plot_pie(spec, out, drop)
        return
    for i, s in enumerate(spec.series):
        levers = ("missing_value",) if missing is not None and missing[0] == i else ()
        values = _numbers(s.values, drop)
        style = f", color={string_literal(s.color)}"
        label = f", label={string_literal(s.name)}" if spec.kind in LEGEND_KINDS else ""
        if spec.kind == "scatter":
            out.add(f"ax.scatter({_numbers(s.x, False)}, {values}{style}{label})", *levers)
        elif spec.kind == "line":
            out.add(f'ax.plot(x, {values}, marker="o"{style}{label})', *levers)
        elif spec.kind == "bar":
            out.add(f"ax.bar(x, {values}{style})", *levers)
        else:
            offsets, width = _GROUPS[len(spec.series)]
            at = "x" if offsets[i] == 0 else f"x {'-' if offsets[i] < 0 else '+'} {abs(offsets[i])}"
            out.add(f"ax.bar({at}, {values}, width={width}{style}{label})", *levers)


def _plot_pie(spec: ChartSpec, out: _Writer, drop: bool) -> None:
    """Clean leaves a missing slice out entirely; careless drops only its value, so the labels
    no longer match the values."""
    values = spec.series[0].values
    kept = [i for i, v in enumerate(values) if v is not None]
    labelled = range(len(values)) if drop else kept
    explode = CARELESS_EXPLODE if "explode" in out.careless else CLEAN_EXPLODE
    pulls = ", ".join(str(explode) if i == spec.highlight else "0" for i in labelled)
    levers = ("explode", "missing_value") if spec.missing is not None else ("explode",)
    out.add(f"ax.pie({_numbers([values[i] for i in kept], False)}, "
            f"labels={_strings(spec.categories[i] for i in labelled)}, explode=[{pulls}], "
            f"startangle=90, counterclock=False)", *levers)


def string_literal(text: str) -> str:
    """A double-quoted Python string literal (JSON escaping is valid Python for these texts)."""
    return json.dumps(text, ensure_ascii=False)


def _strings(texts: Iterable[str]) -> str:
    return "[" + ", ".join(string_literal(t) for t in texts) + "]"


def _numbers(values: Iterable[int | None], drop_missing: bool) -> str:
    return "[" + ", ".join("np.nan" if v is None else str(v) for v in values
                           if not (drop_missing and v is None)) + "]"
