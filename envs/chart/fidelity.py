"""ChartMimic's four low-level views of a chart, recorded inside the sandbox (ChartMimic's
evaluator, chart2code/utils/evaluator/).

* text: every string drawn, in drawing order, except the x/y tick labels and their offset texts
  (ChartMimic clears x/y ticks before drawing: same result, one draw instead of two);
* layout: (nrows, ncols, row/col start/end) of every axes that sits in a gridspec;
* chart type: counts of the outermost calls of the plotting functions ChartMimic wraps;
* colour: the final colour (or colormap name) of the parts of those calls' results that
  ChartMimic's ColorEvaluator reads (chart2code/utils/evaluator/color_evaluator_prefix.py):
  pie wedges (not their labels), boxplot boxes drawn as patches (patch_artist=True; whiskers,
  caps, medians and fliers are not read), violin bodies (first face colour each), the first
  face colour of a scatter, fill_between, bar3d or plot_surface result, and a colormap name for
  scatter / plot_surface only when the call passed `cmap=` (image, pcolor, contour and
  tripcolor results always give theirs).

Only recording happens here; scoring two recordings is `envs.chart.metrics`, outside the
sandbox. Function ids are our own names (ChartMimic uses file paths); both sides of a
comparison are recorded by this module, so only consistency matters. Never imports jax.
"""
from __future__ import annotations

import collections
import functools
import importlib
from collections.abc import Callable, Iterable
from typing import Any

import matplotlib.colors as mcolors
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import Collection
from matplotlib.container import Container
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.projections.polar import PolarAxes
from matplotlib.text import Text

_AXES_TYPES = ("bar", "barh", "plot", "axhline", "axvline", "axvspan", "axhspan", "hlines", "vlines",
               "errorbar", "boxplot", "violinplot", "violin", "hist", "fill_between",
               "fill_betweenx", "scatter", "quiver", "pie", "fill", "imshow", "pcolor", "contour",
               "contourf", "broken_barh", "tripcolor")
_AXES3D_TYPES = ("scatter", "plot", "plot_surface", "bar3d", "bar", "add_collection3d")
_NO_COLOR = frozenset({"Axes.barh", "Axes.plot", "Axes.errorbar", "Axes.violin", "Axes.fill_between",
                       "Axes.fill_betweenx", "NonUniformImage", "Ellipse", "Circle"})
_ARMED = [False]


class CallLog:
    """What the program called, filled while armed: type counts and colour-bearing results."""

    def __init__(self):
        self.types: collections.Counter[str] = collections.Counter()
        self.color_calls: list[tuple[str, Any, str | None]] = []  # group, result, cmap= name
        self.depth = {"type": 0, "color": 0}


LOG = CallLog()


def arm() -> None:
    _ARMED[0] = True


def disarm() -> None:
    _ARMED[0] = False


def install() -> None:
    """Wrap every recorded function; called once in the sandbox server after imports."""
    if getattr(Axes.bar, "_sdpo_recorded", False):
        return
    import matplotlib.axes._base as axes_base
    from matplotlib.image import NonUniformImage
    from matplotlib.patches import Circle, Ellipse
    from mpl_toolkits.mplot3d.axes3d import Axes3D

    for name in _AXES_TYPES:
        _patch(Axes, name, f"Axes.{name}")
    for name in _AXES3D_TYPES:
        _patch(Axes3D, name, f"Axes3D.{name}")
    for cls in (NonUniformImage, Ellipse, Circle):
        _patch(cls, "__init__", cls.__name__, constructor=True)
    _patch(axes_base._process_plot_var_args, "_make_line", None, color_group="line")
    _patch(Axes, "_fill_between_x_or_y", None, color_group="fill_between")
    for module_name, attrs in (("networkx.drawing.nx_pylab", ("draw_networkx_nodes", "draw_networkx_edges",
                                                               "draw_networkx_labels")),
                               ("squarify", ("plot",))):
        module = _optional(module_name)
        for attr in attrs if module else ():
            wrapped = _wrap(getattr(module, attr), f"{module_name.split('.')[0]}.{attr}")
            setattr(module, attr, wrapped)
            top = _optional(module_name.split(".")[0])
            if top is not None and hasattr(top, attr):
                setattr(top, attr, wrapped)
    venn = _optional("matplotlib_venn._common")
    if venn is not None:
        _patch(venn.VennDiagram, "__init__", "VennDiagram", constructor=True)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _patch(owner: type, name: str, type_id: str | None, *, constructor: bool = False,
           color_group: str | None = None) -> None:
    setattr(owner, name, _wrap(getattr(owner, name), type_id, constructor=constructor,
                               color_group=color_group))


def _wrap(fn: Callable, type_id: str | None, *, constructor: bool = False,
          color_group: str | None = None) -> Callable:
    if color_group is None and type_id is not None and type_id not in _NO_COLOR:
        color_group = type_id

    @functools.wraps(fn)
    def recorded(*args, **kwargs):
        if not _ARMED[0]:
            return fn(*args, **kwargs)
        tid = type_id
        if tid == "Axes.plot" and args and isinstance(args[0], PolarAxes):
            tid = "PolarAxes.plot"  # ChartMimic counts (and colours) polar lines separately
        group = "PolarAxes.plot" if tid == "PolarAxes.plot" else color_group
        count = tid is not None and LOG.depth["type"] == 0
        colour = group is not None and LOG.depth["color"] == 0
        patches_before = _gca_patch_count() if tid == "squarify.plot" else 0
        LOG.depth["type"] += count
        LOG.depth["color"] += colour
        try:
            out = fn(*args, **kwargs)
        finally:
            LOG.depth["type"] -= count
            LOG.depth["color"] -= colour
        if count:
            LOG.types[tid] += 1
        if colour:
            made = args[0] if constructor else out
            if isinstance(made, Axes):  # squarify returns the axes it drew its rectangles on
                made = made.patches[patches_before:]
            LOG.color_calls.append((group, made, _cmap_name(kwargs.get("cmap"))))
        return out

    recorded._sdpo_recorded = True
    return recorded


def _cmap_name(cmap: Any) -> str | None:
    if cmap is None:
        return None
    return cmap if isinstance(cmap, str) else getattr(cmap, "name", None)


def _gca_patch_count() -> int:
    import matplotlib.pyplot as plt
    return len(plt.gca().patches)


# ---------------------------------------------------------------- the views
# Which part of a call's result ChartMimic reads, and whose colour it takes first only.
_COLOR_PARTS: dict[str, Callable[[Any], Any]] = {
    "Axes.pie": lambda made: made[0],
    "Axes.boxplot": lambda made: [box for box in made.get("boxes", []) if isinstance(box, Patch)],
    "Axes.violinplot": lambda made: made.get("bodies", []),
}
_FIRST_COLOR = frozenset({"Axes.scatter", "Axes.violinplot", "fill_between", "Axes3D.bar3d",
                          "Axes3D.plot_surface"})
_CMAP_BY_KEYWORD = frozenset({"Axes.scatter", "Axes3D.scatter", "Axes3D.plot_surface"})


def color_keys() -> list[str]:
    """Distinct "group--COLOR" keys of the final colours ChartMimic reads (module docstring)."""
    keys = set()
    for group, made, cmap in LOG.color_calls:
        if group in _CMAP_BY_KEYWORD and cmap:
            keys.add(f"{group}--{cmap}")
            continue
        for artist in _artists(_COLOR_PARTS.get(group, lambda m: m)(made)):
            colors = artist_colors(artist, colormap=group not in _CMAP_BY_KEYWORD)
            keys.update(f"{group}--{c}" for c in (colors[:1] if group in _FIRST_COLOR else colors))
    return sorted(keys)


def _artists(value: Any, depth: int = 0) -> Iterable[Artist]:
    if depth > 4 or value is None:
        return
    if isinstance(value, Artist):
        yield value
    elif isinstance(value, (Container, list, tuple)):
        for item in value:
            yield from _artists(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _artists(item, depth + 1)
    elif hasattr(value, "patches") and not isinstance(value, Axes):  # e.g. a VennDiagram
        yield from _artists(list(value.patches or ()), depth + 1)


def artist_colors(artist: Artist, colormap: bool = True) -> list[str]:
    """Final colour(s) of an artist as upper-case hex in drawing order, or (with `colormap`) its
    colormap's name when it is data-mapped. Patches give their face colour, as ChartMimic reads
    it, even when unfilled."""
    if colormap and isinstance(artist, ScalarMappable) \
            and getattr(artist, "get_array", lambda: None)() is not None:
        return [artist.get_cmap().name]
    if isinstance(artist, (Line2D, Text)):
        return [_hex(artist.get_color())]
    if isinstance(artist, Patch):
        return [_hex(artist.get_facecolor())]
    if isinstance(artist, Collection):
        rows = artist.get_facecolor()
        if len(rows) == 0 or all(r[3] == 0 for r in rows):
            rows = artist.get_edgecolor()
        return list(dict.fromkeys(_hex(r) for r in rows))
    return []


def _hex(color) -> str:
    return mcolors.to_hex(color, keep_alpha=False).upper()


def text_strings(drawn: list[tuple[str, Text | None]], figures: list[Figure]) -> list[str]:
    """Strings drawn, minus x/y tick labels and offset texts (ChartMimic clears x/y ticks)."""
    excluded = set()
    for fig in figures:
        for ax in fig.get_axes():
            for axis in (ax.xaxis, ax.yaxis):
                excluded.add(id(axis.offsetText))
                for tick in axis.majorTicks + axis.minorTicks:
                    excluded.update((id(tick.label1), id(tick.label2)))
    return [s for s, text in drawn if text is None or id(text) not in excluded]


def layout_entries(figures: list[Figure]) -> list[dict[str, int]]:
    """Grid position of every axes placed by a subplotspec (insets and add_axes are skipped)."""
    entries = []
    for fig in figures:
        for ax in fig.get_axes():
            spec = ax.get_subplotspec()
            if spec is None:
                continue
            nrows, ncols = spec.get_gridspec().get_geometry()
            entries.append({"nrows": nrows, "ncols": ncols,
                            "row_start": spec.rowspan.start, "row_end": spec.rowspan.stop - 1,
                            "col_start": spec.colspan.start, "col_end": spec.colspan.stop - 1})
    return entries


def record(drawn: list[tuple[str, Text | None]], figures: list[Figure]) -> dict[str, Any]:
    """The JSON-able recording of one program run."""
    return {"text": text_strings(drawn, figures), "layout": layout_entries(figures),
            "types": dict(LOG.types), "colors": color_keys()}
