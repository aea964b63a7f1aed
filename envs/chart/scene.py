"""The chart scene as data: what a rendered chart contains, where, and which statements made it.

Built inside the sandbox by `envs.chart.extraction` (from matplotlib's objects after the program
drew) and sent out as JSON (`scene_to_json`); the judge outside, a process that never ran model
code, rebuilds it with `scene_from_json`, which checks every field's type and size and turns any
malformed record into a ValueError, never an exception of another kind and never code. The
render itself travels as a PNG and becomes `ChartScene.image` on the judge's side only, so the
pixels detectors and verification read are the pixels the judge decoded. Detectors are pure
functions of a scene (tests build scenes by hand). Imports no matplotlib; never imports jax.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from envs.feedback import Element, LineSpan
from envs.geometry import Box, Point

Spans = tuple[LineSpan, ...]
MAX_ITEMS = 20_000  # per list of a scene (an honest chart has a few hundred)
MAX_POINTS = 200_000  # vertices per mark geometry
ROLES = ("tick_label", "axis_label", "title", "suptitle", "legend", "annotation", "offset", "table",
         "text")


@dataclasses.dataclass
class TextItem:
    """One drawn text. `corners` is its (possibly rotated) rectangle; `clip` the box clipping it."""

    box: Box
    corners: list[Point]
    text: str
    rgba: tuple[float, float, float, float]
    size_pt: float
    bold: bool
    role: str  # tick_label, axis_label, title, suptitle, legend, annotation, offset, table, text
    axes: int | None
    figure: int
    lines: Spans = ()
    color_lines: Spans = ()
    axis: str | None = None  # "x", "y", "z" for tick labels and axis labels
    clip: Box | None = None
    x_height_px: float = 0.0  # its font's x-height on the render (0: unknown)


@dataclasses.dataclass
class AxesItem:
    box: Box
    position: Box  # the box before aspect adjustment (what the layout asked for)
    figure: int
    grid: tuple[int, int, int, int, int] | None  # (gridspec id, row0, row1, col0, col1)
    kind: str  # axes, colorbar, inset
    visible_frame: bool
    lines: Spans = ()


@dataclasses.dataclass
class LegendItem:
    box: Box
    axes: int | None
    figure: int
    lines: Spans = ()


@dataclasses.dataclass
class MarkGeometry:
    """Where a data artist puts ink, for coverage tests: polylines (with half width), filled
    polygons, disks (points with radii) and filled rectangles, all in render pixels."""

    polylines: list[np.ndarray] = dataclasses.field(default_factory=list)
    half_width: float = 1.0
    polygons: list[np.ndarray] = dataclasses.field(default_factory=list)
    points: np.ndarray | None = None
    radii: np.ndarray | None = None
    rects: list[Box] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MarkItem:
    kind: str  # line, patch, collection, image
    box: Box
    axes: int
    figure: int
    clipped: bool  # clipped to its axes when drawn
    lines: Spans = ()
    geometry: MarkGeometry | None = None  # only for marks near a legend (legend_over_data)


@dataclasses.dataclass
class ChartScene:
    width: int
    height: int
    image: np.ndarray  # (height, width, 3) uint8, the render
    figure_boxes: list[Box]
    texts: list[TextItem] = dataclasses.field(default_factory=list)
    axes: list[AxesItem] = dataclasses.field(default_factory=list)
    legends: list[LegendItem] = dataclasses.field(default_factory=list)
    marks: list[MarkItem] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------- to and from JSON
def scene_to_json(scene: ChartScene) -> dict[str, Any]:
    """Everything but the image (the render travels as a PNG)."""
    return {"width": scene.width, "height": scene.height,
            "figure_boxes": [list(b) for b in scene.figure_boxes],
            "texts": [_plain(dataclasses.asdict(t)) for t in scene.texts],
            "axes": [_plain(dataclasses.asdict(a)) for a in scene.axes],
            "legends": [_plain(dataclasses.asdict(lg)) for lg in scene.legends],
            "marks": [_mark_json(m) for m in scene.marks]}


def _mark_json(mark: MarkItem) -> dict[str, Any]:
    plain = _plain({k: v for k, v in dataclasses.asdict(mark).items() if k != "geometry"})
    return {**plain, "geometry": None if mark.geometry is None else _geometry_json(mark.geometry)}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _geometry_json(geo: MarkGeometry) -> dict[str, Any]:
    return {"polylines": [p.tolist() for p in geo.polylines], "half_width": float(geo.half_width),
            "polygons": [p.tolist() for p in geo.polygons],
            "points": None if geo.points is None else geo.points.tolist(),
            "radii": None if geo.radii is None else geo.radii.tolist(),
            "rects": [list(r) for r in geo.rects]}


def scene_from_json(data: Any, image: np.ndarray) -> ChartScene:
    """The scene a runner reported, checked field by field; ValueError when malformed."""
    try:
        return _scene(data, image)
    except (KeyError, TypeError, IndexError, OverflowError) as err:
        raise ValueError(f"malformed chart scene: {type(err).__name__}: {err}") from None


def _scene(d: dict, image: np.ndarray) -> ChartScene:
    width, height = _int(d["width"]), _int(d["height"])
    if (height, width) != image.shape[:2]:
        raise ValueError(f"the scene says {width}x{height} px, the render is "
                         f"{image.shape[1]}x{image.shape[0]}")
    return ChartScene(
        width=width, height=height, image=image,
        figure_boxes=[_box(b) for b in _items(d["figure_boxes"])],
        texts=[TextItem(box=_box(t["box"]), corners=[_point(p) for p in _items(t["corners"], 16)],
                        text=_str(t["text"], 1000), rgba=_unit_floats(t["rgba"]),
                        size_pt=_float(t["size_pt"]), bold=bool(t["bold"]),
                        role=_choice(t["role"], ROLES), axes=_opt_int(t["axes"]),
                        figure=_int(t["figure"]), lines=_spans(t["lines"]),
                        color_lines=_spans(t["color_lines"]),
                        axis=None if t["axis"] is None else _str(t["axis"], 8),
                        clip=None if t["clip"] is None else _box(t["clip"]),
                        x_height_px=_float(t.get("x_height_px", 0.0)))
               for t in _items(d["texts"])],
        axes=[AxesItem(box=_box(a["box"]), position=_box(a["position"]), figure=_int(a["figure"]),
                       grid=None if a["grid"] is None else tuple(
                           _int(v) for v in _fixed(a["grid"], 5)),
                       kind=_choice(a["kind"], ("axes", "colorbar", "inset")),
                       visible_frame=bool(a["visible_frame"]), lines=_spans(a["lines"]))
              for a in _items(d["axes"])],
        legends=[LegendItem(box=_box(lg["box"]), axes=_opt_int(lg["axes"]),
                            figure=_int(lg["figure"]), lines=_spans(lg["lines"]))
                 for lg in _items(d["legends"])],
        marks=[MarkItem(kind=_choice(m["kind"], ("line", "patch", "collection", "image")),
                        box=_box(m["box"]), axes=_int(m["axes"]), figure=_int(m["figure"]),
                        clipped=bool(m["clipped"]), lines=_spans(m["lines"]),
                        geometry=None if m["geometry"] is None else _geometry(m["geometry"]))
               for m in _items(d["marks"])])


def _geometry(g: dict) -> MarkGeometry:
    return MarkGeometry(polylines=[_array(p) for p in _items(g["polylines"])],
                        half_width=_float(g["half_width"]),
                        polygons=[_array(p) for p in _items(g["polygons"])],
                        points=None if g["points"] is None else _array(g["points"]),
                        radii=None if g["radii"] is None else _vector(g["radii"]),
                        rects=[_box(r) for r in _items(g["rects"])])


def _items(value, limit: int = MAX_ITEMS) -> list:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"expected a list of at most {limit} items")
    return value


def _fixed(value, n: int) -> list:
    if not isinstance(value, list) or len(value) != n:
        raise ValueError(f"expected a list of {n} values")
    return value


def _float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 1 << 31:
        raise ValueError("expected an integer")
    return value


def _opt_int(value) -> int | None:
    return None if value is None else _int(value)


def _str(value, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"expected a string of at most {limit} characters")
    return value


def _choice(value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"expected one of {allowed}")
    return value


def _floats(value, n: int) -> tuple[float, ...]:
    return tuple(_float(v) for v in _fixed(value, n))


def _unit_floats(value) -> tuple[float, ...]:
    rgba = _floats(value, 4)
    if not all(0.0 <= c <= 1.0 for c in rgba):
        raise ValueError("colour channels must lie in [0, 1]")
    return rgba


def _box(value) -> Box:
    return _floats(value, 4)  # type: ignore[return-value]


def _point(value) -> Point:
    return _floats(value, 2)  # type: ignore[return-value]


def _spans(value) -> Spans:
    spans = tuple((_int(a), _int(b)) for a, b in (_fixed(s, 2) for s in _items(value, 4096)))
    if any(a < 1 or b < a for a, b in spans):
        raise ValueError("line spans must be 1-based with first <= last")
    return spans


def _array(value) -> np.ndarray:
    rows = _items(value, MAX_POINTS)
    out = np.array([_point(p) for p in rows], dtype=float).reshape(-1, 2)
    return out


def _vector(value) -> np.ndarray:
    return np.array([_float(v) for v in _items(value, MAX_POINTS)], dtype=float)


# ---------------------------------------------------------------- elements for credit
def scene_elements(scene: ChartScene) -> list[Element]:
    """The scene as Feedback elements (texts, axes, legends, marks) for credit weighting."""
    out = [Element(kind="text", region=t.box, lines=t.lines, text=t.text, color=_hex(t.rgba),
                   attrs={"role": t.role, "axes": t.axes, "size_pt": round(t.size_pt, 2)})
           for t in scene.texts]
    out += [Element(kind=a.kind, region=a.box, lines=a.lines, attrs={"index": i})
            for i, a in enumerate(scene.axes)]
    out += [Element(kind="legend", region=lg.box, lines=lg.lines, attrs={"axes": lg.axes})
            for lg in scene.legends]
    out += [Element(kind=m.kind, region=m.box, lines=m.lines, attrs={"axes": m.axes})
            for m in scene.marks]
    return out


def _hex(rgba: tuple[float, ...]) -> str:
    """'#rrggbb' as matplotlib.colors.to_hex writes it (each channel rounded from 0..255)."""
    return "#" + "".join(format(round(c * 255), "02x") for c in rgba[:3])
