"""Visual defects of a rendered chart, found from its scene (`envs.chart.scene`).

Pure functions of a ChartScene (`envs.chart.scene`): they run in the judge, on the scene the
sandbox reported and the pixels the judge decoded, and on hand-made scenes in tests.
Recipes:

* overlap: texts whose (rotated) rectangles intersect by more than `overlap_min` of the smaller
  one; tick-label collisions are reported once per axis with severity = share of labels
  involved; axis texts running into another subplot's plot area; subplots overlapping each other;
* clipped_text: text partly outside its figure, or outside the box that clips it;
* overflow: axes, legends or unclipped data artists reaching outside the figure, unclipped
  data artists reaching well outside their axes;
* legend_over_data: the share of a legend's area over data ink (lines within their width,
  markers, filled patches and polygons, images), sampled on a pixel grid, or a stretch of line
  (>= 15 px) or a marker's centre hidden under it; patches filling their whole axes are
  backgrounds, images and contour fills are data;
* low_contrast: WCAG contrast of the text colour against the median of the render's non-text
  pixels under it (4.5:1, or 3:1 for large text: >= 18 pt, or >= 14 pt bold); a defect when
  hard to read (`envs.color.hard_to_read`, APCA's minimum read at the size of the text's
  glyphs: its font's x-height on the render over the reference 0.52), else an advisory note;
* misalignment: a subplot translated off its grid row/column (both edges moved by the same
  amount > 2 px), near-misses (2 px < offset <= 1.2% of the figure) between edges of subplots
  in the same grid row/column, and between the titles and x-labels of a row; sub-2-px jitter is
  never reported.

Every defect carries the statement spans of the elements involved. Never imports jax.
"""
from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.path import Path

from envs.chart.scene import ChartScene, MarkGeometry, MarkItem, TextItem
from envs.config_dict import checked
from envs.feedback import Defect, LineSpan
from envs.geometry import (Box, area, convex_intersection_area, fraction_outside, intersection,
                           intersection_area, polygon_area, union_box)
from envs.color import (APCA_REFERENCE_X_HEIGHT, blend, contrast_ratio, contrast_severity,
                         contrast_verdict)
from envs.pixels import behind_text

KINDS = ("overlap", "clipped_text", "overflow", "legend_over_data", "low_contrast", "misalignment")


@dataclasses.dataclass(frozen=True)
class ChartDetectorConfig:
    """Thresholds of the chart detectors (defaults documented in the module docstring)."""

    overlap_min: float = 0.1
    axes_overlap_min: float = 0.02
    clip_min: float = 0.02
    overflow_min: float = 0.02
    overflow_axes_min: float = 0.1
    legend_coverage_min: float = 0.05
    legend_hidden_line_px: float = 15.0
    legend_hidden_points: int = 1
    legend_sample_px: float = 3.0
    background_fraction: float = 0.9  # a mark covering this much of its axes is a background
    contrast_small: float = 4.5
    contrast_large: float = 3.0
    misalign_tolerance: float = 0.012
    misalign_min_px: float = 2.0  # sub-2-px jitter is invisible: never a defect
    max_per_kind: int = 12
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self):
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown chart defect kind(s) {unknown}; known: {list(KINDS)}")

    @classmethod
    def from_dict(cls, values: dict | None) -> "ChartDetectorConfig":
        values = checked(cls, values, "chart detector")
        if "kinds" in values:
            values["kinds"] = tuple(values["kinds"])
        return cls(**values)


def detect(scene: ChartScene, config: ChartDetectorConfig | None = None) -> list[Defect]:
    """All enabled detectors over one scene, most severe first within each kind; advisory
    notes (`Defect.advisory`) among them, which the env keeps out of the defects."""
    config = config or ChartDetectorConfig()
    detectors = {"overlap": overlaps, "clipped_text": clipped_texts, "overflow": overflows,
                 "legend_over_data": legends_over_data, "low_contrast": low_contrast,
                 "misalignment": misalignments}
    defects: list[Defect] = []
    for kind in config.kinds:
        found = sorted(detectors[kind](scene, config), key=lambda d: (-d.severity, d.region))
        for advisory in (False, True):  # advisory notes are capped apart from the defects
            defects.extend([d for d in found if d.advisory == advisory][:config.max_per_kind])
    return defects


def _lines(items: Iterable) -> tuple[LineSpan, ...]:
    return tuple(sorted({span for item in items for span in item.lines}))


def _describe(t: TextItem) -> str:
    text = t.text if len(t.text) <= 24 else t.text[:21] + "..."
    return f"{t.role.replace('_', ' ')} {text!r}"


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


# ---------------------------------------------------------------- overlap
def overlaps(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = _tick_collisions(scene, config)
    texts = scene.texts
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if a.role == b.role == "tick_label" and a.axes == b.axes and a.axis == b.axis:
                continue  # reported per axis by _tick_collisions
            if intersection(a.box, b.box) is None or _same_label(a, b):
                continue
            ratio = _text_overlap(a, b)
            if ratio > config.overlap_min:
                defects.append(Defect(
                    "overlap", _clamp(ratio), union_box([a.box, b.box]),
                    f"{_describe(a)} overlaps {_describe(b)} ({ratio:.0%} of the smaller); move one, "
                    f"shrink the font or leave more space", _lines([a, b])))
    defects += _texts_into_other_axes(scene, config)
    defects += _axes_overlaps(scene, config)
    return defects


def _same_label(a: TextItem, b: TextItem) -> bool:
    """Two identical texts drawn on one spot read as one label (e.g. a label drawn twice), not
    as a collision: same string and colour, boxes nearly coincident."""
    if a.text != b.text or any(abs(x - y) > 0.02 for x, y in zip(a.rgba, b.rgba)):
        return False
    inter = intersection_area(a.box, b.box)
    return inter >= 0.9 * max(area(a.box), area(b.box))


def _text_overlap(a: TextItem, b: TextItem) -> float:
    smaller = min(polygon_area(a.corners), polygon_area(b.corners))
    return 0.0 if smaller <= 0 else convex_intersection_area(a.corners, b.corners) / smaller


def _tick_collisions(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    groups: dict[tuple, list[TextItem]] = defaultdict(list)
    for t in scene.texts:
        if t.role == "tick_label":
            groups[(t.axes, t.axis)].append(t)
    defects = []
    for (ax, axis), labels in groups.items():
        along = 0 if axis == "x" else 1
        labels.sort(key=lambda t: (t.box[along] + t.box[along + 2]) / 2)
        colliding: set[int] = set()
        for i in range(len(labels)):
            for j in range(i + 1, min(i + 3, len(labels))):
                if intersection(labels[i].box, labels[j].box) and \
                        _text_overlap(labels[i], labels[j]) > config.overlap_min:
                    colliding.update((i, j))
        if colliding:
            involved = [labels[i] for i in sorted(colliding)]
            defects.append(Defect(
                "overlap", _clamp(len(colliding) / len(labels)), union_box(t.box for t in involved),
                f"{len(colliding)} of {len(labels)} {axis}-tick labels of axes {ax} overlap; use fewer "
                f"ticks, a smaller font, shorter labels or rotate them", _lines(involved)))
    return defects


def _texts_into_other_axes(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    for t in scene.texts:
        if t.axes is None or t.role not in ("tick_label", "axis_label", "title"):
            continue
        own = scene.axes[t.axes]
        for j, other in enumerate(scene.axes):
            if j == t.axes or other.figure != own.figure or other.kind != "axes" or own.kind != "axes":
                continue
            if other.box == own.box or not other.visible_frame:
                continue  # a twin sharing the plot area, or an axes without a frame
            share = intersection_area(t.box, other.box) / max(area(t.box), 1e-9)
            if share > config.overlap_min:
                defects.append(Defect(
                    "overlap", _clamp(share), t.box,
                    f"{_describe(t)} of axes {t.axes} runs into the plot area of axes {j}; add space "
                    f"between subplots (tight_layout, subplots_adjust) or shorten it",
                    _lines([t, other])))
    return defects


def _axes_overlaps(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    subplots = [(i, a) for i, a in enumerate(scene.axes) if a.kind == "axes"]
    for n, (i, a) in enumerate(subplots):
        for j, b in subplots[n + 1:]:
            if a.figure != b.figure or a.box == b.box or a.grid == b.grid:
                continue
            smaller = min(area(a.box), area(b.box))
            share = intersection_area(a.box, b.box) / smaller if smaller > 0 else 0.0
            if share > config.axes_overlap_min:
                defects.append(Defect(
                    "overlap", _clamp(share * 2), intersection(a.box, b.box),
                    f"axes {i} and axes {j} overlap ({share:.0%} of the smaller); fix their positions "
                    f"or the grid spacing", _lines([a, b])))
    return defects


# ---------------------------------------------------------------- clipping and overflow
def clipped_texts(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    for t in scene.texts:
        canvas = scene.figure_boxes[t.figure]
        outside = fraction_outside(t.box, canvas)
        where = "the figure"
        if outside <= config.clip_min and t.clip is not None:
            outside, where = fraction_outside(t.box, t.clip), "its axes"
        if outside > config.clip_min:
            defects.append(Defect(
                "clipped_text", _clamp(2 * outside, 0.2), t.box,
                f"{_describe(t)} is {outside:.0%} outside {where} and gets cut off; shorten it, "
                f"shrink its font or move it inside", _lines([t])))
    return defects


def overflows(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    boxes = [(a, f"{a.kind} {i}", "place it inside (positions are figure fractions 0..1)")
             for i, a in enumerate(scene.axes)]
    boxes += [(lg, "the legend", "move it inside (loc / bbox_to_anchor)") for lg in scene.legends]
    for item, name, fix in boxes:
        outside = fraction_outside(item.box, scene.figure_boxes[item.figure])
        if outside > config.overflow_min:
            defects.append(Defect("overflow", _clamp(2 * outside, 0.2), item.box,
                                  f"{name} is {outside:.0%} outside the figure; {fix}", _lines([item])))
    for m in scene.marks:
        if m.clipped or area(m.box) <= 0:
            continue
        outside_fig = fraction_outside(m.box, scene.figure_boxes[m.figure])
        # A colour bar's extension arrows (extend='both') are drawn outside its axes by design.
        outside_axes = 0.0 if scene.axes[m.axes].kind == "colorbar" else \
            fraction_outside(m.box, scene.axes[m.axes].box)
        if outside_fig > config.overflow_min or outside_axes > config.overflow_axes_min:
            where = "the figure" if outside_fig > config.overflow_min else f"axes {m.axes}"
            share = outside_fig if outside_fig > config.overflow_min else outside_axes
            defects.append(Defect("overflow", _clamp(share, 0.2), m.box,
                                  f"an unclipped {m.kind} reaches {share:.0%} outside {where}; keep "
                                  f"clipping on or fix its data/limits", _lines([m])))
    return defects


# ---------------------------------------------------------------- legend over data
def legends_over_data(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    """A legend hides data when much of its area lies over data ink, or when it hides a stretch
    of a line or the centres of markers (thin lines cover little area but still disappear)."""
    defects = []
    for lg in scene.legends:
        marks = [m for m in scene.marks if m.geometry is not None and _visible_part(m, lg.box, scene)
                 and not _is_background(m, scene, config) and not _is_reference(m, scene)
                 and (lg.axes is None or m.axes <= lg.axes)]  # a later (twin) axes paints over it
        if not marks:
            continue
        samples = _grid(lg.box, config.legend_sample_px)
        covered_by = [_covered(m, samples) & _inside(samples, _visible_part(m, lg.box, scene))
                      for m in marks]
        coverage = float(np.logical_or.reduce(covered_by).mean())
        hidden = [_hidden(m.geometry, _visible_part(m, lg.box, scene)) for m in marks]
        line_px = sum(h[0] for h in hidden)
        points = sum(h[1] for h in hidden)
        if coverage > config.legend_coverage_min or line_px >= config.legend_hidden_line_px or \
                points >= config.legend_hidden_points:
            culprits = [m for m, hit, h in zip(marks, covered_by, hidden) if hit.any() or any(h)]
            severity = max(2 * coverage, min(0.6, 0.3 + line_px / 200 + 0.05 * points))
            defects.append(Defect(
                "legend_over_data", _clamp(severity), lg.box,
                f"the legend hides data ({coverage:.0%} of its area over plotted marks, {line_px:.0f} px "
                f"of lines, {points} markers); move it (loc='best', or outside with bbox_to_anchor)",
                _lines([lg, *culprits])))
    return defects


def _visible_part(m: MarkItem, box: Box, scene: ChartScene) -> Box | None:
    """The part of `box` where mark m can show ink: a mark clipped to its axes draws nothing
    outside them, so a legend placed outside the axes (below, beside) hides none of it."""
    if intersection(m.box, box) is None:
        return None
    return intersection(box, scene.axes[m.axes].box) if m.clipped else box


def _hidden(geo: MarkGeometry, box: Box) -> tuple[float, int]:
    """Length (px) of polylines and number of point centres inside a box."""
    inner = (box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1)
    length = 0.0
    for line in geo.polylines:
        a, b = line[:-1], line[1:]
        near = ((np.maximum(a[:, 0], b[:, 0]) >= inner[0]) & (np.minimum(a[:, 0], b[:, 0]) <= inner[2]) &
                (np.maximum(a[:, 1], b[:, 1]) >= inner[1]) & (np.minimum(a[:, 1], b[:, 1]) <= inner[3]))
        for start, end in zip(a[near], b[near]):  # points every <= 1 px along each segment
            seg = float(np.hypot(*(end - start)))
            t = np.linspace(0.0, 1.0, max(1, int(np.ceil(seg))) + 1)[:, None]
            length += seg * _inside(start + t * (end - start), inner).mean()
    points = 0 if geo.points is None else int(_inside(geo.points, inner).sum())
    return length, points


def _inside(points: np.ndarray, box: Box) -> np.ndarray:
    return ((points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) &
            (points[:, 1] >= box[1]) & (points[:, 1] <= box[3]))


def _is_background(m: MarkItem, scene: ChartScene, config: ChartDetectorConfig) -> bool:
    """A patch covering (nearly) its whole axes: a backdrop, not data (images are data)."""
    if m.kind != "patch":
        return False
    ax_area = area(scene.axes[m.axes].box)
    return ax_area > 0 and intersection_area(m.box, scene.axes[m.axes].box) >= config.background_fraction * ax_area


def _is_reference(m: MarkItem, scene: ChartScene) -> bool:
    """A line or band drawn across its whole axes (axvline, axhline, axvspan, bin edges): a
    reference or a shaded backdrop a legend may sit on, not data it hides. Straight lines only
    (every polyline vertical or horizontal); patches spanning both edges of one dimension."""
    if m.kind not in ("line", "patch"):
        return False
    ax = scene.axes[m.axes].box
    spans = [m.box[k] <= ax[k] + 2 and m.box[k + 2] >= ax[k + 2] - 2 for k in (0, 1)]
    if not any(spans):
        return False
    if m.kind == "patch":
        return True
    geo = m.geometry
    return geo is not None and bool(geo.polylines) and geo.points is None and all(
        np.ptp(line[:, 0]) < 1 or np.ptp(line[:, 1]) < 1 for line in geo.polylines)


def _grid(box: Box, step: float) -> np.ndarray:
    nx = max(4, int((box[2] - box[0]) / step))
    ny = max(4, int((box[3] - box[1]) / step))
    xs = np.linspace(box[0], box[2], nx + 2)[1:-1]
    ys = np.linspace(box[1], box[3], ny + 2)[1:-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def _covered(m: MarkItem, samples: np.ndarray) -> np.ndarray:
    geo = m.geometry
    hit = np.zeros(len(samples), dtype=bool)
    for rect in geo.rects:
        hit |= ((samples[:, 0] >= rect[0]) & (samples[:, 0] <= rect[2]) &
                (samples[:, 1] >= rect[1]) & (samples[:, 1] <= rect[3]))
    for poly in geo.polygons:
        if len(poly) >= 3:
            hit |= Path(poly).contains_points(samples)
    for line in geo.polylines:
        hit |= _near_polyline(samples, line, geo.half_width + 0.5)
    if geo.points is not None and len(geo.points):
        pts = geo.points[:5000]
        radii = geo.radii[:len(pts)] if geo.radii is not None else np.ones(len(pts))
        for start in range(0, len(samples), 256):
            chunk = samples[start:start + 256]
            d2 = ((chunk[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
            hit[start:start + 256] |= (d2 <= (radii[None, :] + 0.5) ** 2).any(axis=1)
    return hit


def _near_polyline(samples: np.ndarray, line: np.ndarray, reach: float) -> np.ndarray:
    """Samples within `reach` px of any segment of the polyline (vectorised)."""
    if len(line) > 4000:
        line = line[np.linspace(0, len(line) - 1, 4000).astype(int)]
    a, b = line[:-1], line[1:]
    lo = np.minimum(a, b) - reach
    hi = np.maximum(a, b) + reach
    smin, smax = samples.min(axis=0), samples.max(axis=0)
    keep = (hi[:, 0] >= smin[0]) & (lo[:, 0] <= smax[0]) & (hi[:, 1] >= smin[1]) & (lo[:, 1] <= smax[1])
    a, b = a[keep], b[keep]
    hit = np.zeros(len(samples), dtype=bool)
    if not len(a):
        return hit
    ab = b - a
    denom = np.maximum((ab ** 2).sum(-1), 1e-12)
    for start in range(0, len(a), 512):
        sa, sab, sden = a[start:start + 512], ab[start:start + 512], denom[start:start + 512]
        rel = samples[:, None, :] - sa[None, :, :]
        t = np.clip((rel * sab[None]).sum(-1) / sden[None], 0.0, 1.0)
        nearest = sa[None] + t[..., None] * sab[None]
        d2 = ((samples[:, None, :] - nearest) ** 2).sum(-1)
        hit |= (d2 <= reach ** 2).any(axis=1)
    return hit


# ---------------------------------------------------------------- contrast
def low_contrast(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    image = scene.image
    for t in scene.texts:
        background = behind_text(image, t.box, np.array(t.rgba[:3]) * 255)
        if background is None:
            continue
        foreground = blend((*(c * 255 for c in t.rgba[:3]), t.rgba[3]), background)
        ratio = contrast_ratio(foreground, background)
        large = t.size_pt >= 18 or (t.bold and t.size_pt >= 14)
        required = config.contrast_large if large else config.contrast_small
        if ratio < required:
            verdict, advisory = contrast_verdict(ratio, required, foreground, background,
                                                 t.x_height_px / APCA_REFERENCE_X_HEIGHT, t.bold)
            defects.append(Defect(
                "low_contrast", contrast_severity(ratio, required), t.box,
                f"{_describe(t)} has contrast {ratio:.2f}:1 against its background ({verdict}); "
                f"pick a darker/lighter colour", t.color_lines, advisory=advisory))
    return defects


# ---------------------------------------------------------------- misalignment
def misalignments(scene: ChartScene, config: ChartDetectorConfig) -> list[Defect]:
    defects = []
    rows: dict[tuple, list[int]] = defaultdict(list)
    cols: dict[tuple, list[int]] = defaultdict(list)
    for i, a in enumerate(scene.axes):
        if a.kind == "axes" and a.grid is not None:
            gs, r0, r1, c0, c1 = a.grid
            rows[(a.figure, gs, r0, r1)].append(i)
            cols[(a.figure, gs, c0, c1)].append(i)
    for groups, edges, axis_name in ((rows, (1, 3), "row"), (cols, (0, 2), "column")):
        for members in groups.values():
            if len(members) < 2:
                continue
            shifted = _shifted_subplots(scene, config, members, edges, axis_name)
            if shifted:
                defects += shifted
                continue
            for edge in edges:
                values = {i: scene.axes[i].position[edge] for i in members}
                defects += _near_misses(scene, config, values, f"{_EDGE[edge]} edge", axis_name,
                                        [scene.axes[i] for i in members], along_x=edge in (0, 2),
                                        by_axes=True)
    defects += _label_misalignments(scene, config, rows)
    return defects


_EDGE = {0: "left", 1: "top", 2: "right", 3: "bottom"}


def _shifted_subplots(scene: ChartScene, config: ChartDetectorConfig, members: list[int],
                      edges: tuple[int, int], group: str) -> list[Defect]:
    """Subplots of one grid row (column) moved off it: both edges across the row (column)
    displaced by the same visible amount. A translation, unlike a colour bar or an aspect rule
    that resizes one subplot, is never what the grid asked for, however large it is."""
    found = _translated(scene, config, members, edges, group, "position")
    return found or _translated(scene, config, members, edges, group, "box")


def _translated(scene: ChartScene, config: ChartDetectorConfig, members: list[int],
                edges: tuple[int, int], group: str, frame: str) -> list[Defect]:
    """Translations of the layout boxes (`position`) or, for axes an aspect rule shrank, of
    the boxes as drawn (`box`): moving such an axes by hand sets its layout box to the drawn one."""
    start = {i: getattr(scene.axes[i], frame)[edges[0]] for i in members}
    end = {i: getattr(scene.axes[i], frame)[edges[1]] for i in members}
    clusters = _clusters(start, config.misalign_min_px)
    sizes = sorted((len(c) for c in clusters), reverse=True)
    if len(clusters) < 2:
        return []
    if sizes[0] == sizes[1]:  # no majority (e.g. a pair): judge the group as a whole
        movers, ref = members[1:], members[0]
    else:
        line = max(clusters, key=len)
        movers, ref = [i for i in members if i not in line], line[0]
    defects = []
    for i in movers:
        d0, d1 = start[i] - start[ref], end[i] - end[ref]
        size = abs(end[ref] - start[ref])
        if abs(d0) > config.misalign_min_px and abs(d0 - d1) <= 1.0 and abs(d0) <= 0.5 * size:
            involved = [scene.axes[i]] if sizes[0] != sizes[1] else [scene.axes[k] for k in members]
            defects.append(Defect(
                "misalignment", _clamp(0.4 + abs(d0) / 40), scene.axes[i].box,
                f"axes {i} is shifted {abs(d0):.0f} px off the line of its grid {group}; remove the "
                f"manual position (set_position / add_axes) or align it with the others",
                _lines(involved)))
    return defects


def _near_misses(scene: ChartScene, config: ChartDetectorConfig, values: dict[int, float], what: str,
                 group: str, items: Sequence, along_x: bool, by_axes: bool) -> list[Defect]:
    """Members whose coordinate misses the group's alignment by a little (an intended alignment
    that failed; a large offset is taken as intended). The alignment is the coordinate most
    members share; when no single one does (e.g. two members), the whole group is one defect."""
    fig = scene.figure_boxes[items[0].figure]
    tolerance = config.misalign_tolerance * ((fig[2] - fig[0]) if along_x else (fig[3] - fig[1]))
    names = {key: f"axes {key}" if by_axes else _describe(item) for key, item in zip(values, items)}
    item_of = dict(zip(values, items))
    clusters = _clusters(values, config.misalign_min_px)
    sizes = sorted((len(c) for c in clusters), reverse=True)
    if len(clusters) > 1 and sizes[0] == sizes[1]:
        spread = max(values.values()) - min(values.values())
        if config.misalign_min_px < spread <= tolerance:
            members = [item_of[k] for k in values]
            return [Defect("misalignment", 0.5, union_box(m.box for m in members),
                           f"the {what}s of {', '.join(names[k] for k in values)} differ by {spread:.1f} px "
                           f"within one {group}; align them (same positions / fig.align_labels())",
                           _lines(members))]
        return []
    reference = statistics.fmean(values[k] for k in max(clusters, key=len))
    defects = []
    for key, value in values.items():
        offset = value - reference
        if config.misalign_min_px < abs(offset) <= tolerance:
            defects.append(Defect(
                "misalignment", 0.5, item_of[key].box,
                f"the {what} of {names[key]} is {abs(offset):.1f} px off the rest of its {group}; "
                f"align it (same positions / fig.align_labels())", _lines([item_of[key]])))
    return defects


def _clusters(values: dict[int, float], gap: float) -> list[list[int]]:
    """Keys grouped by value: neighbours closer than `gap` share a cluster."""
    ordered = sorted(values, key=values.get)
    clusters = [[ordered[0]]]
    for key in ordered[1:]:
        if values[key] - values[clusters[-1][-1]] <= gap:
            clusters[-1].append(key)
        else:
            clusters.append([key])
    return clusters


def _label_misalignments(scene: ChartScene, config: ChartDetectorConfig, rows) -> list[Defect]:
    """Titles and x-labels of one grid row should share a height. (Y-labels of a column are left
    out on purpose: matplotlib places each after its own tick labels, so unaligned y-labels are
    the norm in clean charts, not a near-miss.)"""
    by_axes: dict[tuple[int, str], TextItem] = {}
    for t in scene.texts:
        if t.axes is not None and (t.role == "title" or (t.role == "axis_label" and t.axis == "x")):
            by_axes[(t.axes, t.role)] = t
    defects = []
    for role in ("title", "axis_label"):
        for members in rows.values():
            labels = {i: by_axes[(i, role)] for i in members if (i, role) in by_axes}
            if len(labels) >= 2:
                centres = {i: (t.box[1] + t.box[3]) / 2 for i, t in labels.items()}
                defects += _near_misses(scene, config, centres, "vertical centre", "row",
                                        list(labels.values()), along_x=False, by_axes=False)
    return defects
