"""Building the scene (`envs.chart.scene`) from matplotlib's objects after the program drew.

Runs inside the sandbox: every drawn text (titles, labels, tick labels, legend entries,
annotations...), every axes, legend and data artist (lines, patches, collections, images) with
its pixel box on the render (top-left origin; several figures are stacked top to bottom),
colours, and the statement spans traced to it (`envs.chart.tracing`). What it builds is a
claim made in the process that ran model code: the judge outside checks it against the pixels
and runs the detectors on it (`envs.chart.env`). Never imports jax.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.colors as mcolors
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import Collection, LineCollection, PathCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.font_manager import findfont, get_font, weight_dict
from matplotlib.ft2font import LoadFlags
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text

from envs.chart import tracing
from envs.chart.scene import (AxesItem, ChartScene, LegendItem, MarkGeometry, MarkItem, Spans,
                              TextItem)
from envs.geometry import Box, Point, box_corners, intersection, rotated_rect
from envs.program import StatementIndex

# What places an axes: an axes element answers only for these statements (its title, labels and
# limits have elements of their own), so credit for a misplaced axes lands on its placement.
_AXES_PLACEMENT = frozenset({tracing.CREATE, "set_position", "set_subplotspec", "set_anchor",
                             "set_aspect", "set_box_aspect", "set_adjustable", "set_axes_locator", "axis"})
_FIGURE_PLACEMENT = frozenset({"subplots_adjust", "tight_layout", "set_layout_engine",
                               "set_size_inches", "set_figwidth", "set_figheight"})


@dataclasses.dataclass
class RenderedFigure:
    """One figure's pixels; (left, top) is the rendered region's top-left corner in the
    figure's display coordinates (0, height unless the program saved a tight box)."""

    figure: Figure
    renderer: Any
    rgb: np.ndarray
    offset_y: int
    left: float
    top: float


class _Frame:
    """Display coordinates of one figure (origin bottom-left) -> render pixels of the stack."""

    def __init__(self, rendered: RenderedFigure):
        self.left, self.top, self.offset_y = rendered.left, rendered.top, rendered.offset_y

    def box(self, bbox) -> Box:
        x0, y0, x1, y1 = bbox.x0, bbox.y0, bbox.x1, bbox.y1
        return (float(min(x0, x1)) - self.left, self.offset_y + self.top - float(max(y0, y1)),
                float(max(x0, x1)) - self.left, self.offset_y + self.top - float(min(y0, y1)))

    def points(self, xy: np.ndarray) -> np.ndarray:
        out = np.asarray(xy, dtype=float).reshape(-1, 2).copy()
        out[:, 0] -= self.left
        out[:, 1] = self.offset_y + self.top - out[:, 1]
        return out[np.isfinite(out).all(axis=1)]


def stack_renders(rendered: Sequence[RenderedFigure]) -> np.ndarray:
    """One white-padded image holding every figure's render, top to bottom."""
    width = max(r.rgb.shape[1] for r in rendered)
    height = sum(r.rgb.shape[0] for r in rendered)
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    for r in rendered:
        image[r.offset_y:r.offset_y + r.rgb.shape[0], :r.rgb.shape[1]] = r.rgb
    return image


class SceneBuilder:
    """Builds a ChartScene (and the Feedback elements) from rendered figures."""

    def __init__(self, index: StatementIndex, max_marks_per_axes: int = 200):
        self.index = index
        self.max_marks_per_axes = max_marks_per_axes

    def spans(self, *owners: object, color_only: bool = False, ops: frozenset[str] | None = None) -> Spans:
        """Statement spans recorded on the owners: all, or only creation and colour changes, or
        only the given operations."""
        lines = [line for owner in owners for line, op in tracing.records(owner)
                 if (not color_only or op == tracing.CREATE or tracing.is_color_op(op))
                 and (ops is None or op in ops)]
        return self.index.spans(lines)

    def build(self, rendered: Sequence[RenderedFigure], drawn: Iterable[Text]) -> ChartScene:
        image = stack_renders(rendered)
        scene = ChartScene(width=image.shape[1], height=image.shape[0], image=image, figure_boxes=[])
        axes_index: dict[int, int] = {}
        gridspec_ids: dict[int, int] = {}
        roles: dict[int, tuple[str, str | None, tuple[object, ...], Axes | None]] = {}
        frames = []
        for fig_i, r in enumerate(rendered):
            frame = _Frame(r)
            frames.append(frame)
            scene.figure_boxes.append((0.0, float(r.offset_y), float(r.rgb.shape[1]),
                                       float(r.offset_y + r.rgb.shape[0])))
            for ax in r.figure.get_axes():
                if not ax.get_visible():
                    continue
                axes_index[id(ax)] = len(scene.axes)
                scene.axes.append(self._axes_item(ax, fig_i, frame, gridspec_ids))
                _collect_roles(ax, roles)
            for legend in _legends(r.figure):
                scene.legends.append(LegendItem(
                    box=frame.box(legend.get_window_extent(r.renderer)),
                    axes=axes_index.get(id(legend.axes)) if legend.axes is not None else None,
                    figure=fig_i, lines=self.spans(legend)))
                for text in [*legend.texts, legend.get_title()]:
                    roles[id(text)] = ("legend", None, (legend,), legend.axes)
            for attr in ("_suptitle", "_supxlabel", "_supylabel"):
                text = getattr(r.figure, attr, None)
                if text is not None:
                    roles[id(text)] = ("suptitle", None, (), None)
        fig_of = {id(r.figure): i for i, r in enumerate(rendered)}
        seen: set[int] = set()
        for text in drawn:
            if text is None or id(text) in seen:
                continue
            seen.add(id(text))
            fig = text.get_figure(root=True)
            if id(fig) not in fig_of:
                continue
            fig_i = fig_of[id(fig)]
            item = self._text_item(text, rendered[fig_i].renderer, frames[fig_i], fig_i, roles,
                                   axes_index)
            if item is not None:
                scene.texts.append(item)
        legend_boxes = [lg.box for lg in scene.legends]
        for r_i, r in enumerate(rendered):
            for ax in r.figure.get_axes():
                if id(ax) in axes_index:
                    self._add_marks(scene, ax, axes_index[id(ax)], r_i, r.renderer, frames[r_i],
                                    legend_boxes)
        return scene

    # ------------------------------------------------------------ items
    def _axes_item(self, ax: Axes, fig_i: int, frame: _Frame, gridspec_ids: dict[int, int]) -> AxesItem:
        fig = ax.get_figure(root=True)
        position = ax.get_position(original=True).transformed(fig.transFigure)
        spec = ax.get_subplotspec()
        grid = None
        if spec is not None:
            gs_id = gridspec_ids.setdefault(id(spec.get_gridspec()), len(gridspec_ids))
            grid = (gs_id, spec.rowspan.start, spec.rowspan.stop - 1, spec.colspan.start,
                    spec.colspan.stop - 1)
        if hasattr(ax, "_colorbar"):
            kind = "colorbar"
        elif spec is None:
            kind = "inset"
        else:
            kind = "axes"
        return AxesItem(box=frame.box(ax.bbox), position=frame.box(position), figure=fig_i, grid=grid,
                        kind=kind, visible_frame=bool(ax.axison),
                        lines=self.spans(ax, ops=_AXES_PLACEMENT) + self.spans(fig, ops=_FIGURE_PLACEMENT))

    def _text_item(self, text: Text, renderer, frame: _Frame, fig_i: int, roles, axes_index) -> TextItem | None:
        content = text.get_text()
        if not content or not content.strip() or not text.get_visible():
            return None
        extent = Text.get_window_extent(text, renderer)  # text only, not an annotation's arrow
        if extent.width <= 0 or extent.height <= 0 or not np.isfinite([extent.x0, extent.y1]).all():
            return None
        box = frame.box(extent)
        corners = _text_corners(text, renderer, box)
        role, axis_name, owners, ax = roles.get(id(text), (None, None, (), text.axes))
        if role is None:
            role = "annotation" if isinstance(text, Annotation) else "text"
        own = self.index.spans(sorted({line for owner in (text, *owners)
                                       for line, op in tracing.records(_artist(owner))
                                       if _accepts(owner, op)}))
        lines = own or (self.spans(ax) if ax is not None else ())
        clip = None
        if text.get_clip_on() and text.get_clip_box() is not None and role in ("text", "annotation"):
            clip = frame.box(text.get_clip_box())
        weight = text.get_fontweight()
        bold = (weight if isinstance(weight, (int, float)) else weight_dict.get(str(weight), 400)) >= 600
        return TextItem(box=box, corners=corners, text=content[:200],
                        rgba=tuple(mcolors.to_rgba(text.get_color(), text.get_alpha())),
                        size_pt=float(text.get_fontsize()), bold=bold, role=role,
                        axes=axes_index.get(id(ax)) if ax is not None else None, figure=fig_i,
                        lines=lines, color_lines=self.spans(text, color_only=True) or lines,
                        axis=axis_name, clip=clip, x_height_px=_x_height_px(text, renderer))

    def _add_marks(self, scene: ChartScene, ax: Axes, ax_i: int, fig_i: int, renderer, frame: _Frame,
                   legend_boxes: list[Box]) -> None:
        count = 0
        for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.images]:
            if count >= self.max_marks_per_axes or not artist.get_visible():
                continue
            try:
                # Collections measure themselves badly (matplotlib returns an empty box for
                # scatter, contour and line collections): their ink gives the box instead.
                ink = isinstance(artist, Collection) and not isinstance(artist, QuadMesh)
                geometry = _geometry(artist, frame, renderer) if ink else None
                box = _geometry_box(geometry) if ink else frame.box(artist.get_window_extent(renderer))
                if isinstance(artist, Line2D) and box is not None:  # a straight line's box is flat
                    box = _padded(box, max(1.0, artist.get_linewidth() * renderer.points_to_pixels(1.0) / 2))
            except Exception:  # noqa: BLE001 - an artist that cannot measure itself is skipped
                continue
            if box is None or not np.isfinite(box).all() or (box[2] <= box[0] and box[3] <= box[1]):
                continue
            count += 1
            if any(intersection(box, lb) for lb in legend_boxes):
                geometry = geometry or _geometry(artist, frame, renderer)
            else:
                geometry = None  # only marks near a legend need their ink kept
            scene.marks.append(MarkItem(
                kind=_mark_kind(artist), box=box, axes=ax_i, figure=fig_i,
                clipped=bool(artist.get_clip_on()), lines=self.spans(artist) or self.spans(ax),
                geometry=geometry))


def _legends(fig: Figure) -> list[Legend]:
    found = [ax.get_legend() for ax in fig.get_axes()] + list(fig.legends)
    return [lg for lg in found if lg is not None and lg.get_visible()]


def _tick_op(op: str) -> bool:
    return "tick" in op or op.startswith(("set_major", "set_minor"))


def _label_op(op: str) -> bool:
    return op.startswith("set_label")


def _artist(owner):
    return owner[0] if isinstance(owner, tuple) else owner


def _accepts(owner, op: str) -> bool:
    """An owner given as (artist, predicate) answers only for the operations it accepts."""
    return not isinstance(owner, tuple) or owner[1](op)


def _collect_roles(ax: Axes, roles: dict) -> None:
    """Role, axis name, owners (whose trace records also describe it: an Axis only for its
    tick or label operations) and axes of its texts."""
    for title in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)):
        if title is not None:
            roles[id(title)] = ("title", None, (), ax)
    for name, axis in getattr(ax, "_axis_map", {}).items():
        roles[id(axis.label)] = ("axis_label", name, ((axis, _label_op),), ax)
        roles[id(axis.offsetText)] = ("offset", name, ((axis, _tick_op),), ax)
        for tick in axis.majorTicks + axis.minorTicks:
            for label in (tick.label1, tick.label2):
                roles[id(label)] = ("tick_label", name, ((axis, _tick_op), tick), ax)
    for table in getattr(ax, "tables", ()):
        for cell in table.get_celld().values():
            roles[id(cell.get_text())] = ("table", None, (table,), ax)


def _x_height_px(text: Text, renderer) -> float:
    """The height of an 'x' in the text's font at the render's dpi (unhinted outline), the size
    APCA's font lookup is read by; 0.0 when the font cannot say."""
    prop = text.get_fontproperties()
    key = (prop, float(renderer.dpi))
    if key not in _X_HEIGHTS:
        try:
            font = get_font(findfont(prop))
            font.set_size(prop.get_size_in_points(), float(renderer.dpi))
            _X_HEIGHTS[key] = font.load_char(ord("x"), flags=LoadFlags.NO_HINTING).height / 64.0
        except Exception:  # noqa: BLE001 - a font that cannot be measured: the size is unknown
            _X_HEIGHTS[key] = 0.0
    return _X_HEIGHTS[key]


_X_HEIGHTS: dict[tuple, float] = {}


def _text_corners(text: Text, renderer, box: Box) -> list[Point]:
    angle = text.get_rotation() % 180.0
    if min(angle, 180.0 - angle) < 1.0 or abs(angle - 90.0) < 1.0:
        return box_corners(box)
    rotation = text.get_rotation()
    text.set_rotation(0.0)  # the unrotated size; the rotated box shares its centre
    try:
        flat = Text.get_window_extent(text, renderer)
    finally:
        text.set_rotation(rotation)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rotated_rect(cx, cy, flat.width, flat.height, rotation)


def _padded(box: Box, pad: float) -> Box:
    return (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)


def _geometry_box(geo: MarkGeometry) -> Box | None:
    """Bounds of all the ink in a MarkGeometry (lines counted with their width)."""
    parts = [*geo.polylines, *geo.polygons]
    if geo.points is not None and len(geo.points):
        radii = geo.radii[:, None] if geo.radii is not None else 0.0
        parts += [geo.points - radii, geo.points + radii]
    parts += [np.array([[r[0], r[1]], [r[2], r[3]]]) for r in geo.rects]
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    stacked = np.concatenate(parts)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    box = (float(low[0]), float(low[1]), float(high[0]), float(high[1]))
    return _padded(box, geo.half_width) if geo.polylines else box


def _mark_kind(artist: Artist) -> str:
    if isinstance(artist, Line2D):
        return "line"
    if isinstance(artist, Patch):
        return "patch"
    if isinstance(artist, (AxesImage, QuadMesh)):
        return "image"
    return "collection"


def _geometry(artist: Artist, frame: _Frame, renderer) -> MarkGeometry:
    """Ink of one data artist in render pixels (see MarkGeometry)."""
    px_per_pt = renderer.points_to_pixels(1.0)
    geo = MarkGeometry()
    if isinstance(artist, Line2D):
        xy = frame.points(artist.get_transform().transform(artist.get_xydata()))
        if artist.get_linestyle() not in ("None", "none", "", " ") and len(xy) > 1:
            geo.polylines.append(xy)
            geo.half_width = max(1.0, artist.get_linewidth() * px_per_pt / 2)
        if artist.get_marker() not in (None, "None", "none", "", " "):
            geo.points = xy
            geo.radii = np.full(len(xy), max(1.0, artist.get_markersize() * px_per_pt / 2))
    elif isinstance(artist, (AxesImage, QuadMesh)):
        geo.rects.append(frame.box(artist.get_window_extent(renderer)))
    elif isinstance(artist, Patch):
        path = artist.get_transform().transform_path(artist.get_path())
        geo.polygons.extend(frame.points(p) for p in path.to_polygons() if len(p) >= 3)
    elif isinstance(artist, PathCollection) and len(artist.get_offsets()):
        offsets = artist.get_offset_transform().transform(artist.get_offsets())
        geo.points = frame.points(offsets)
        sizes = np.asarray(artist.get_sizes(), dtype=float)
        radii = np.sqrt(sizes if len(sizes) else np.array([36.0])) * px_per_pt / 2
        geo.radii = np.resize(np.maximum(radii, 1.0), len(geo.points))
    elif isinstance(artist, LineCollection):
        transform = artist.get_transform()
        geo.polylines.extend(frame.points(transform.transform(seg)) for seg in artist.get_segments()
                             if len(seg) > 1)
        widths = artist.get_linewidths()
        geo.half_width = max(1.0, float(np.max(widths) if len(widths) else 1.0) * px_per_pt / 2)
    elif isinstance(artist, Collection):
        transform = artist.get_transform()
        offsets = np.asarray(artist.get_offsets(), dtype=float).reshape(-1, 2)
        # drawn like Collection.draw does: each path by `transform`, moved by its display offset
        shifts = artist.get_offset_transform().transform(offsets) if len(offsets) else np.zeros((1, 2))
        paths = artist.get_paths()[:2000]
        for i in range(max(len(paths), len(shifts)) if paths else 0):
            vertices = transform.transform(paths[i % len(paths)].vertices) + shifts[i % len(shifts)]
            if len(vertices) >= 3:
                geo.polygons.append(frame.points(vertices))
    return geo

