"""Which statements of the model's program made or changed each matplotlib artist.

Runtime hooks, installed once in the sandbox server before any run: `Artist.__init__` records
the line that created an artist; every `set_*` method of every Artist subclass, plus a few
axis- and figure-level modifiers (`tick_params`, `subplots_adjust`, ...), records the line that
called it with the method's name. "The line" is that of the innermost frame running the
model's code (`envs.program.GEN_FILENAME`), so calls made through pyplot, seaborn or the
model's own helper functions land on the model's statement. The hooks do nothing until
`arm()`, so the runner's own drawing is never attributed to the program.

Lazily made artists (tick labels built at draw time, legend internals) have no records of their
own: extraction reads their owners' records instead (Axis, Legend, Axes).
Never imports jax; only ever installed inside a sandbox process.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Iterable

from matplotlib.artist import Artist

from envs.program import GEN_FILENAME

TRACE_ATTR = "_sdpo_trace"
MAX_RECORDS_PER_ARTIST = 48
CREATE = "create"
_ARMED = [False]
_EXTRA_MODIFIERS = (
    "tick_params", "grid", "axis", "margins", "autoscale", "invert_xaxis", "invert_yaxis",
    "locator_params", "ticklabel_format", "minorticks_on", "minorticks_off", "label_outer",
    "tick_top", "tick_bottom", "tick_left", "tick_right", "subplots_adjust", "tight_layout",
    "align_labels", "align_xlabels", "align_ylabels", "autofmt_xdate", "update", "set")
_COLOR_OPS = frozenset({"set_alpha", "set_c", "set_fc", "set_ec", "set_cmap", "set_norm", "set_clim"})


def arm() -> None:
    """Start attributing: the program is about to run."""
    _ARMED[0] = True


def disarm() -> None:
    """Stop attributing: the runner draws and measures from here on."""
    _ARMED[0] = False


def records(artist: object) -> list[tuple[int, str]]:
    """(line, operation) pairs recorded on an artist, oldest first."""
    return getattr(artist, "__dict__", {}).get(TRACE_ATTR, [])


def is_color_op(op: str) -> bool:
    """Whether an operation sets what colour something is drawn in."""
    return "color" in op or op in _COLOR_OPS


def install(extra_classes: Iterable[type] = ()) -> None:
    """Wrap Artist.__init__ and the modifiers of every Artist subclass imported so far."""
    if getattr(Artist.__init__, "_sdpo_traced", False):
        return
    Artist.__init__ = _traced(Artist.__init__, CREATE)
    for cls in set(_subclasses(Artist)) | set(extra_classes):
        for name, value in list(vars(cls).items()):
            if not callable(value) or isinstance(value, (staticmethod, classmethod, type)):
                continue
            if (name.startswith("set_") or name in _EXTRA_MODIFIERS) and not getattr(value, "_sdpo_traced", False):
                setattr(cls, name, _traced(value, name))


def _subclasses(cls: type) -> Iterable[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _traced(method, op: str):
    @functools.wraps(method)
    def traced(self, *args, **kwargs):
        if _ARMED[0]:
            _record(self, op)
        return method(self, *args, **kwargs)
    traced._sdpo_traced = True
    return traced


def _record(artist, op: str) -> None:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename != GEN_FILENAME:
        frame = frame.f_back
    if frame is None:
        return
    entry = (frame.f_lineno, op)
    store = artist.__dict__.get(TRACE_ATTR)
    if store is None:
        artist.__dict__[TRACE_ATTR] = [entry]
    elif entry not in store and len(store) < MAX_RECORDS_PER_ARTIST:
        store.append(entry)
