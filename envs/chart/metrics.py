"""ChartMimic's low-level fidelity scores (ChartMimic, arXiv 2406.09961;
ChartMimic/ChartMimic chart2code/utils/evaluator/) between two chart recordings.

Recordings come from `envs.chart.fidelity` (made inside the sandbox for both the model's
program and the target). Per view, precision = matched / |generated|, recall = matched / |gold|,
F1; `fidelity` is their mean (ChartMimic's "Low" score of one item, in [0, 1]).

* text: multiset exact string match;
* layout: multiset exact match of (nrows, ncols, row/col start/end) entries;
* type: n_correct = sum over function ids of min(count_gen, count_gold);
* colour: per function-id group, the assignment between the two colour lists maximising the
  summed similarity (Hungarian), similarity = max(0, 1 - CIEDE2000/100) for two hex colours,
  1 for two equal colormap names, else 0; lists over 10 colours are first thinned greedily
  (drop a colour more than 0.7 similar to one kept).

Checked against ChartMimic's evaluators (chart2code/utils/evaluator/{text,layout,chart_type,
color}_evaluator.py, commit 7ee16fb) and VLMEvalKit's copies: the matching rules above are
theirs. Two differences, both handled in `score`:
* Empty views. ChartMimic scores 0 when either side of a view is empty, so a chart with no
  titles or labels scores text 0 even against itself. For training rewards both-empty scores 1
  here, so a program always scores 1.0 against itself; `score(..., official=True)` applies
  ChartMimic's rule, for benchmark columns. One side empty scores 0 either way.
* Ids. ChartMimic names a chart type or colour group by its defining file and function, so the
  constructors of Circle and Ellipse (both `matplotlib/patches.py` `__init__`) are one type
  there; the recorder's ids are class names, so `score` merges them (`SAME_ID`).
Never imports jax.
"""
from __future__ import annotations

import collections
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from envs.color import ciede2000

VIEWS = ("text", "layout", "type", "color")
MAX_COLORS = 10
SIMILAR = 0.7
SAME_ID = {"Circle": "Ellipse"}  # recorder id -> the id ChartMimic's file-function name shares


def f1(matched: float, n_generated: float, n_gold: float) -> float:
    """F1 of a match count; both sides empty counts as a perfect match (see module docstring)."""
    if n_generated == 0 and n_gold == 0:
        return 1.0
    if n_generated == 0 or n_gold == 0 or matched <= 0:
        return 0.0
    precision, recall = matched / n_generated, matched / n_gold
    return 2 * precision * recall / (precision + recall)


def _multiset_f1(generated: Sequence, gold: Sequence) -> float:
    gen, ref = collections.Counter(generated), collections.Counter(gold)
    matched = sum(min(count, ref[key]) for key, count in gen.items())
    return f1(matched, sum(gen.values()), sum(ref.values()))


def text_f1(generated: Sequence[str], gold: Sequence[str]) -> float:
    return _multiset_f1(generated, gold)


def layout_f1(generated: Sequence[dict[str, int]], gold: Sequence[dict[str, int]]) -> float:
    def key(entry: dict[str, int]) -> tuple:
        return tuple(sorted(entry.items()))
    return _multiset_f1([key(e) for e in generated], [key(e) for e in gold])


def type_f1(generated: dict[str, int], gold: dict[str, int]) -> float:
    matched = sum(min(int(count), int(gold.get(key, 0))) for key, count in generated.items())
    return f1(matched, sum(int(v) for v in generated.values()), sum(int(v) for v in gold.values()))


def color_similarity(a: str, b: str) -> float:
    """max(0, 1 - CIEDE2000/100) for hex colours, equality for colormap names, 0 for a mix."""
    a_hex, b_hex = a.startswith("#"), b.startswith("#")
    if a_hex and b_hex:
        return max(0.0, 1.0 - ciede2000(_rgb(a), _rgb(b)) / 100.0)
    if not a_hex and not b_hex:
        return 1.0 if a == b else 0.0
    return 0.0


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def thin_colors(keys: Sequence[str]) -> list[str]:
    """Keys "group--colour" after ChartMimic's greedy thinning of lists longer than 10."""
    keys = sorted(set(keys))
    if len(keys) <= MAX_COLORS:
        return keys
    kept: list[str] = []
    for key in keys:
        colour = key.rsplit("--", 1)[-1]
        if all(color_similarity(colour, k.rsplit("--", 1)[-1]) <= SIMILAR for k in kept):
            kept.append(key)
    return kept


def color_f1(generated: Sequence[str], gold: Sequence[str]) -> float:
    gen, ref = thin_colors(generated), thin_colors(gold)
    groups_gen: dict[str, list[str]] = collections.defaultdict(list)
    groups_ref: dict[str, list[str]] = collections.defaultdict(list)
    for key in gen:
        group, _, colour = key.rpartition("--")
        groups_gen[group].append(colour)
    for key in ref:
        group, _, colour = key.rpartition("--")
        groups_ref[group].append(colour)
    total = 0.0
    for group in groups_gen.keys() & groups_ref.keys():
        a, b = groups_gen[group], groups_ref[group]
        sim = np.array([[color_similarity(x, y) for y in b] for x in a])
        rows, cols = linear_sum_assignment(-sim)
        total += float(sim[rows, cols].sum())
    return f1(total, len(gen), len(ref))


_LAYOUT_KEYS = ("nrows", "ncols", "row_start", "row_end", "col_start", "col_end")
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


def parse_recording(data: Any) -> dict[str, Any]:
    """A recording from the sandbox, checked as data (it was made where model code ran);
    ValueError naming the first malformed view."""
    if not isinstance(data, dict):
        raise ValueError("the recording is not an object")
    text, layout, types, colors = (data.get(k) for k in ("text", "layout", "types", "colors"))
    if not isinstance(text, list) or len(text) > 20_000 or not all(
            isinstance(t, str) for t in text):
        raise ValueError("recording.text must be a list of strings")
    if not isinstance(layout, list) or len(layout) > 1000 or not all(
            isinstance(e, dict) and set(e) == set(_LAYOUT_KEYS)
            and all(_count(v) for v in e.values()) for e in layout):
        raise ValueError("recording.layout must be a list of grid positions")
    if not isinstance(types, dict) or len(types) > 1000 or not all(
            isinstance(k, str) and _count(v) for k, v in types.items()):
        raise ValueError("recording.types must map names to counts")
    if not isinstance(colors, list) or len(colors) > 20_000 or not all(
            isinstance(c, str) and "--" in c and len(c) < 200 and (
                not c.rpartition("--")[2].startswith("#") or _HEX.fullmatch(c.rpartition("--")[2]))
            for c in colors):
        raise ValueError("recording.colors must be 'group--#RRGGBB' or 'group--colormap' keys")
    return {"text": text, "layout": layout, "types": types, "colors": colors}


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31


def _views(recording: dict[str, Any]) -> dict[str, Any]:
    """The four views, with ids ChartMimic does not tell apart merged (SAME_ID)."""
    types: collections.Counter[str] = collections.Counter()
    for key, count in recording.get("types", {}).items():
        types[SAME_ID.get(key, key)] += int(count)
    colors = []
    for key in recording.get("colors", []):
        group, sep, colour = key.rpartition("--")
        colors.append(f"{SAME_ID.get(group, group)}{sep}{colour}")
    return {"text": list(recording.get("text", [])), "layout": list(recording.get("layout", [])),
            "type": dict(types), "color": colors}


def score(generated: dict[str, Any], gold: dict[str, Any], official: bool = False
          ) -> dict[str, float]:
    """The four F1s and their mean ("fidelity") of a generated recording against the target's;
    `official` scores a view empty on both sides 0, as ChartMimic does (module docstring)."""
    return project_and_official_scores(generated, gold)[int(official)]


def project_and_official_scores(generated: dict[str, Any], gold: dict[str, Any]
                                ) -> tuple[dict[str, float], dict[str, float]]:
    """`score` under both rules from one computation of the F1s (the chart env reports both)."""
    gen, ref = _views(generated), _views(gold)
    project = {"text": text_f1(gen["text"], ref["text"]),
               "layout": layout_f1(gen["layout"], ref["layout"]),
               "type": type_f1(gen["type"], ref["type"]),
               "color": color_f1(gen["color"], ref["color"])}
    official = {view: 0.0 if not gen[view] and not ref[view] else project[view]
                for view in VIEWS}
    for scores in (project, official):
        scores["fidelity"] = sum(scores[v] for v in VIEWS) / len(VIEWS)
    return project, official
