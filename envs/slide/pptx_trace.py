"""Runtime tracing of python-pptx programs: which statements created and edited each shape.

Installed in the sandbox child before the model's program runs (compiled as "<gen>"):

* creators (`add_textbox`, `add_shape`, `add_picture`, `add_table`, `add_chart`, `add_connector`,
  `add_group_shape`, `build_freeform`, `Slides.add_slide`) record the caller's statement against
  the returned shape's (slide index, cNvPr id);
* every property setter and editing method of python-pptx's proxies (TextFrame, _Paragraph,
  _Run, Font, ColorFormat, FillFormat, LineFormat, shapes...) records the caller's statement
  against the shape that owns the proxy's XML element (nearest p:sp / p:pic / p:graphicFrame /
  p:grpSp / p:cxnSp ancestor), or against the slide (id 0) for slide-level edits;
* `Presentation.save` is redirected to the run's output path, and the last presentation created
  is kept so a program that never saves still yields a deck.

Only the caller's line is looked up (frame walk to "<gen>"), so tracing costs little.
Must only run inside the sandbox (it patches python-pptx for the whole process); installed once
in the warm server by envs/slide/pptx_runner.py. Never imports jax.
"""
from __future__ import annotations

import functools
import inspect
import sys
from typing import Any

from envs.program import GEN_FILENAME, StatementIndex

SHAPE_TAGS = ("sp", "pic", "graphicFrame", "grpSp", "cxnSp")
CREATORS = ("add_textbox", "add_shape", "add_picture", "add_table", "add_chart", "add_connector",
            "add_group_shape", "add_movie", "add_ole_object", "build_freeform")
EDITING_METHODS = ("add_paragraph", "add_run", "solid", "patterned", "gradient", "background",
                   "fit_text", "clear", "add_line_break", "insert_picture", "merge", "add_break")
_PROXY_MODULES = ("pptx.text.text", "pptx.dml.color", "pptx.dml.fill", "pptx.dml.line",
                  "pptx.shapes.base", "pptx.shapes.autoshape", "pptx.shapes.picture",
                  "pptx.shapes.graphfrm", "pptx.shapes.group", "pptx.shapes.connector",
                  "pptx.shapes.placeholder", "pptx.table", "pptx.slide", "pptx.dml.effect",
                  "pptx.enum.text")


class Tracer:
    """Statement spans per (slide index, shape id); shape id 0 = the slide itself."""

    def __init__(self, code: str = "", output_path: str = "deck.pptx"):
        self.reset(code, output_path)

    def reset(self, code: str, output_path: str) -> None:
        """Forget everything: a new program is about to run (one tracer serves many forks)."""
        self.spans = StatementIndex(code)
        self.output_path = output_path
        self.created: dict[tuple[int, int], set[tuple[int, int]]] = {}
        self.edited: dict[tuple[int, int], set[tuple[int, int]]] = {}
        self.slides: list[Any] = []  # slide XML elements, in creation order (identity = index)
        self.presentations: list[Any] = []
        self.saved = False

    # -- lookups ---------------------------------------------------------------------------
    def caller_span(self) -> tuple[int, int] | None:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == GEN_FILENAME:
                return self.spans.span(frame.f_lineno)
            frame = frame.f_back
        return None

    def slide_index(self, sld) -> int:
        for k, known in enumerate(self.slides):
            if known is sld:
                return k
        self.slides.append(sld)
        return len(self.slides) - 1

    def owner_key(self, obj: Any) -> tuple[int, int] | None:
        element = _xml_element(obj)
        if element is None:
            return None
        shape_id, sld = None, None
        for node in (element, *element.iterancestors()):
            local = node.tag.rsplit("}", 1)[-1]
            if shape_id is None and local in SHAPE_TAGS:
                ids = node.xpath("./*[1]/*[local-name()='cNvPr']/@id")
                shape_id = int(ids[0]) if ids else None
            if local == "sld":
                sld = node
                break
        if sld is None:
            return None
        return self.slide_index(sld), shape_id or 0

    def record(self, table: dict, key: tuple[int, int] | None, span: tuple[int, int] | None) -> None:
        if key is not None and span is not None:
            table.setdefault(key, set()).add(span)

    def lines_for(self, key: tuple[int, int]) -> dict[str, list[list[int]]]:
        return {"created": sorted(map(list, self.created.get(key, ()))),
                "edited": sorted(map(list, self.edited.get(key, ())))}


def _xml_element(obj: Any, depth: int = 0):
    """The lxml element behind a python-pptx proxy (searching its parents a few levels up)."""
    from lxml import etree
    if isinstance(obj, etree._Element):
        return obj
    if depth > 4 or obj is None:
        return None
    attrs = getattr(obj, "__dict__", {})
    for value in attrs.values():
        if isinstance(value, etree._Element):
            return value
    for name in ("_parent", "_shape", "_slide"):
        if name in attrs:
            found = _xml_element(attrs[name], depth + 1)
            if found is not None:
                return found
    return None


def install(tracer: Tracer) -> None:
    """Patch python-pptx in this process so every shape keeps the statements that made it."""
    import importlib

    import pptx.presentation
    import pptx.shapes.shapetree as shapetree
    import pptx.slide

    def wrap_creator(fn):
        @functools.wraps(fn)
        def creator(self, *args, **kwargs):
            shape = fn(self, *args, **kwargs)
            tracer.record(tracer.created, tracer.owner_key(shape), tracer.caller_span())
            return shape
        return creator

    for cls in (shapetree._BaseGroupShapes, shapetree.SlideShapes, shapetree.GroupShapes):
        for name in CREATORS:
            if name in vars(cls):  # wrap where defined (add_table lives on SlideShapes only)
                setattr(cls, name, wrap_creator(vars(cls)[name]))

    add_slide = pptx.slide.Slides.add_slide

    @functools.wraps(add_slide)
    def traced_add_slide(self, layout):
        slide = add_slide(self, layout)
        key = (tracer.slide_index(slide._element), 0)
        tracer.record(tracer.created, key, tracer.caller_span())
        for placeholder in slide.placeholders:  # layout placeholders come with the slide
            tracer.record(tracer.created, tracer.owner_key(placeholder), tracer.caller_span())
        return slide

    pptx.slide.Slides.add_slide = traced_add_slide

    def wrap_editor(fn):
        @functools.wraps(fn)
        def editor(self, *args, **kwargs):
            tracer.record(tracer.edited, tracer.owner_key(self), tracer.caller_span())
            return fn(self, *args, **kwargs)
        return editor

    for module_name in _PROXY_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for cls in vars(module).values():
            if not inspect.isclass(cls) or not cls.__module__.startswith("pptx."):
                continue
            for name, attr in list(vars(cls).items()):
                if isinstance(attr, property) and attr.fset is not None:
                    setattr(cls, name, property(attr.fget, wrap_editor(attr.fset), attr.fdel, attr.__doc__))
                elif name in EDITING_METHODS and inspect.isfunction(attr):
                    setattr(cls, name, wrap_editor(attr))

    init = pptx.presentation.Presentation.__init__

    @functools.wraps(init)
    def traced_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        tracer.presentations.append(self)

    pptx.presentation.Presentation.__init__ = traced_init
    save = pptx.presentation.Presentation.save

    @functools.wraps(save)
    def redirected_save(self, file):
        save(self, tracer.output_path)
        tracer.saved = True

    pptx.presentation.Presentation.save = redirected_save
