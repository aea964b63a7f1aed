"""Defects planted the way a person breaks a page, slide or chart (issue 15), written apart from
the project's own injections (`envs.eval.web_inject`, `envs.eval.chart_inject`) so the detectors
are not measured on recipes they were tuned with:

* nested_occluder (overlap): a red "NEW" badge put inside a text element as its first child,
  absolutely positioned, so it is printed over the element's own first line;
* opaque_box (overlap): a dark box appended at the end of <body>, absolutely placed over a text;
* grid_nudge (misalignment): one member of a row or column of repeated peers moved 14 px right
  and 7 px down with a CSS transform (not the relative offsets web_inject uses);
* pale_on_box (low_contrast): the text's container gets a gradient and the text pale grey on its
  own white (or 85 % white) box, the backdrop detectors must read behind the glyphs;
* content_added (overflow, or clipped text where the slide clips; fixed canvases only): words
  written into a text of the slide's content, enough at its font size and width to fill what is
  left of the slide and more, pushing content off it.

Charts (`CHART_RECIPES`, statements for `envs.eval.chart_inject.detection_report`): a caption
drawn across the x tick labels, a subplot moved 14 px right and 7 px down out of its grid (a
grid neighbour in another cell, so not a twin that set_position moves along), pale
text on its own white box inside the axes. An injection counts only when valid: its render
visibly changed (`envs.pixels.visibly_changed`). Never imports jax.
"""
from __future__ import annotations

import dataclasses
import random

from envs import geometry
from envs.eval.chart_inject import Injection as ChartInjection
from envs.eval.web_inject import add_inline_style, style_tagged, untag
from envs.web.detectors import PageLayout, alignment_groups, out_of_sight
from envs.web.source_map import SOURCE_ATTR, SourceMap

# The defect kinds that describe each planted class: content pushed off a slide is overflow, or
# clipped text where the slide clips its overflow.
HTML_KINDS = {"nested_occluder": ("overlap",), "opaque_box": ("overlap",), "grid_nudge": ("misalignment",),
              "pale_on_box": ("low_contrast",), "content_added": ("overflow", "clipped_text")}
CANVAS_ONLY = frozenset({"content_added"})  # pages grow; only a fixed canvas is overflowed
TEXT_TAGS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "span", "a", "td", "div",
                       "blockquote", "figcaption", "label", "dd", "dt"})


def _start_tag_end(source: SourceMap, source_id: int) -> int:
    tagged = source.tagged_html
    return tagged.index(">", tagged.index(f' {SOURCE_ATTR}="{source_id}"')) + 1


def _insert(source: SourceMap, at: int, text: str) -> tuple[str, int]:
    """Source with `text` inserted at offset `at`; the line is that of text's first non-blank."""
    tagged = source.tagged_html
    leading = len(text) - len(text.lstrip("\n"))
    return untag(tagged[:at] + text + tagged[at:]), tagged.count("\n", 0, at) + 1 + leading


def _texts(layout: PageLayout, canvas: tuple[float, float], min_chars: int = 20) -> list[int]:
    """Own, visible, readable text elements fully on the canvas (the first screen of a page)."""
    out = []
    for i, r in enumerate(layout.records):
        if not (r["own"] and r["visible"] and r["lines"] and len(r["text"]) >= min_chars
                and r["tag"] in TEXT_TAGS and not out_of_sight(layout, i)):
            continue
        box = geometry.union_box(r["lines"])
        if box[0] < 0 or box[1] < 0 or box[2] > canvas[0] or box[3] > canvas[1] or box[2] - box[0] < 120:
            continue
        if r["clip"] and geometry.intersection_area(box, r["clip"]) < geometry.area(box) - 1:
            continue
        out.append(i)
    return out


def nested_occluder(source: SourceMap, layout: PageLayout, i: int, rng: random.Random):
    line = layout.records[i]["lines"][0]
    width = int(min(240, max(70, 0.4 * (line[2] - line[0]))))
    badge = (f'<span style="position:absolute;z-index:5;width:{width}px;height:{int(line[3] - line[1])}px;'
             f'background:#e74c3c;color:#fff;font:bold 12px sans-serif">NEW</span>')
    return _insert(source, _start_tag_end(source, layout.records[i]["sid"]), badge)


def opaque_box(source: SourceMap, layout: PageLayout, i: int, rng: random.Random):
    x0, y0, x1, y1 = geometry.union_box(layout.records[i]["lines"])
    box = (f'\n<div style="position:absolute;left:{x0 - 4:.0f}px;top:{y0 - 2:.0f}px;width:{x1 - x0 + 8:.0f}px;'
           f'height:{y1 - y0 + 4:.0f}px;background:#2c3e50;z-index:10"></div>\n')
    at = source.tagged_html.lower().rfind("</body>")
    return None if at < 0 else _insert(source, at, box)


def grid_nudge(source: SourceMap, layout: PageLayout, i: int, rng: random.Random):
    return add_inline_style(source, layout.records[i]["sid"], "transform: translate(14px, 7px) !important")


def pale_on_box(source: SourceMap, layout: PageLayout, i: int, rng: random.Random):
    rec = layout.records[i]
    parent = rec["parent"]
    if parent < 0 or not layout.records[parent]["own"] or layout.records[parent]["sid"] == rec["sid"]:
        return None
    box = rng.choice(("#ffffff", "rgba(255,255,255,0.85)"))
    tagged, line = style_tagged(source.tagged_html, rec["sid"],
                                f"background: {box} !important; color: #c4c4c4 !important")
    tagged, line2 = style_tagged(tagged, layout.records[parent]["sid"],
                                 "background: linear-gradient(135deg, #1e3c72, #7a2a52) !important")
    return untag(tagged), (line, line2)


def content_added(source: SourceMap, layout: PageLayout, i: int, rng: random.Random):
    """More words written into a text of the slide (at the start of its content, so the edit
    sits on its start tag's line and the words take its font): enough at its size and width to
    fill what is left of the slide and more, pushing content off it."""
    rec = layout.records[i]
    box = geometry.union_box(rec["lines"])
    size = max(8.0, rec["fontSize"])
    lines = (layout.viewport[1] - box[3]) / (1.2 * size) + 20
    chars = lines * max(1.0, (box[2] - box[0]) / (0.38 * size))
    sentence = "This paragraph was added to make one more point about the same topic."
    words = " ".join([sentence] * max(4, int(chars / len(sentence)) + 1))
    return _insert(source, _start_tag_end(source, rec["sid"]), words + " ")


RECIPES = {"nested_occluder": nested_occluder, "opaque_box": opaque_box, "grid_nudge": grid_nudge,
           "pale_on_box": pale_on_box, "content_added": content_added}


def _nudge_targets(layout: PageLayout, canvas: tuple[float, float]) -> list[int]:
    out = []
    for kind, group in alignment_groups(layout):
        axis = 1 if kind == "row" else 0
        if max(layout.records[i]["box"][axis] for i in group) - min(layout.records[i]["box"][axis] for i in group) > 0.5:
            continue
        for i in group:
            x0, y0, x1, y1 = layout.records[i]["box"]
            if layout.records[i]["own"] and x1 - x0 >= 40 and y1 - y0 >= 20 and x1 <= canvas[0] and y1 <= canvas[1]:
                out.append(i)
    return out


@dataclasses.dataclass(frozen=True)
class Planted:
    recipe: str
    kinds: tuple[str, ...]
    html: str
    lines: tuple[int, ...]
    record: int


def plant(source: SourceMap, layout: PageLayout, recipe: str, rng: random.Random,
          canvas: tuple[float, float], avoid: frozenset[int] = frozenset()) -> Planted | None:
    """One `recipe` planted on a random suitable target, or None when the page offers none.
    `avoid`: records that already show the recipe's defect (planting there shows nothing new)."""
    targets = _nudge_targets(layout, canvas) if recipe == "grid_nudge" else _texts(layout, canvas)
    targets = [i for i in targets if i not in avoid]
    rng.shuffle(targets)
    for i in targets[:20]:
        made = RECIPES[recipe](source, layout, i, rng)
        if made is not None:
            html, lines = made
            return Planted(recipe, HTML_KINDS[recipe], html, lines if isinstance(lines, tuple) else (lines,), i)
    return None


_PICK = ("import matplotlib.pyplot as _plt, numpy as _np; _fig = _plt.gcf(); "
         "_ax = [a for a in _fig.axes if a.axison and a.name == 'rectilinear'][0]; ")
CHART_RECIPES: tuple[ChartInjection, ...] = (
    ChartInjection("caption_across_ticks", "overlap", _PICK +
                   "_fig.canvas.draw(); _r = _fig.canvas.get_renderer(); "
                   "_tl = [t.get_window_extent(_r) for t in _ax.get_xticklabels() if t.get_text() and t.get_visible()]; "
                   "assert _tl, 'no x tick labels'; "
                   "_y = sum((b.y0 + b.y1) / 2 for b in _tl) / len(_tl) / _fig.bbox.height; "
                   "_x = sum((b.x0 + b.x1) / 2 for b in _tl) / len(_tl) / _fig.bbox.width; "
                   "_fig.text(_x, _y, 'Source: survey data, all regions combined', ha='center', va='center', "
                   "fontsize=11)"),
    ChartInjection("subplot_moved", "misalignment",
                   "import matplotlib.pyplot as _plt; _fig = _plt.gcf(); "
                   "_spec = lambda a: a.get_subplotspec(); "
                   "_ax = next(a for a in _fig.axes if _spec(a) is not None and any("
                   "b is not a and _spec(b) is not None and _spec(b).get_gridspec() is _spec(a).get_gridspec() "
                   "and (_spec(b).rowspan == _spec(a).rowspan) != (_spec(b).colspan == _spec(a).colspan) "
                   "for b in _fig.axes)); _p = _ax.get_position(); "
                   "_ax.set_position([_p.x0 + 14 / _fig.bbox.width, _p.y0 - 7 / _fig.bbox.height, _p.width, _p.height])"),
    ChartInjection("pale_on_box", "low_contrast", _PICK +
                   "_ax.text(0.5, 0.5, 'Key finding: +12% year on year', transform=_ax.transAxes, ha='center', "
                   "color='#c4c4c4', fontsize=12, zorder=10, bbox=dict(facecolor='white', edgecolor='none'))"),
)
