"""Defect injection for pages and HTML slides: one inline-style edit on one start tag per kind.

Used to measure the detectors (recall per kind, and whether the traced lines hold the edited
line) on real pages. Targets are chosen from the clean render's geometry so every injection
is visible: a text element whose contrast the detector can measure (a known plain background,
not a picture beneath it, as axe-core also requires) for low contrast, a block with a line
of text for clipping/overflow, a pair of unrelated text elements for overlap, a member of an
exactly aligned row or column of repeated peers for misalignment (nudged 4-6 px: visible, not
jitter). The edit inserts declarations with !important into the
target's start tag (a new `style` attribute right after the tag name, or prepended to the
existing one), so exactly one line changes. Never imports jax.
"""
from __future__ import annotations

import dataclasses
import random
import re

from envs import geometry
from envs import color as wcolor
from envs.web.detectors import (BLOCK_DISPLAYS, DetectorConfig, PageLayout, alignment_groups,
                                measure_contrast)
from envs.web.source_map import SOURCE_ATTR, SourceMap

KINDS = ("low_contrast", "clipped_text", "overflow", "overlap", "misalignment")


@dataclasses.dataclass(frozen=True)
class Injection:
    kind: str
    html: str
    line: int          # the one edited line (1-based)
    record: int        # target element in the clean layout
    region: tuple[float, float, float, float]  # where the defect should appear (clean geometry)


def add_inline_style(source: SourceMap, source_id: int, declarations: str) -> tuple[str, int]:
    """Source with `declarations` added to element source_id's start tag; returns (html, line)."""
    edited, line = style_tagged(source.tagged_html, source_id, declarations)
    return untag(edited), line


def style_tagged(tagged: str, source_id: int, declarations: str) -> tuple[str, int]:
    """The same edit on the tagged source, which stays tagged (for several edits in a row)."""
    at = tagged.index(f' {SOURCE_ATTR}="{source_id}"')
    tag_end = tagged.index(">", at)
    start_tag = tagged[at:tag_end]
    style = re.search(r"""\sstyle\s*=\s*(["'])""", start_tag)
    if style:
        insert_at = at + style.end()
        edited = tagged[:insert_at] + declarations + ";" + tagged[insert_at:]
        return edited, tagged.count("\n", 0, insert_at) + 1
    return tagged[:at] + f' style="{declarations}"' + tagged[at:], tagged.count("\n", 0, at) + 1


def untag(tagged: str) -> str:
    """The page as the model would have written it: the judge's source tags removed."""
    return re.sub(rf' {SOURCE_ATTR}="\d+"', "", tagged)


def _text_targets(layout: PageLayout, viewport_only: bool) -> list[int]:
    vw, vh = layout.viewport
    out = []
    for i, r in enumerate(layout.records):
        if not (r["own"] and r["visible"] and r["lines"] and len(r["text"]) >= 8):
            continue
        box = geometry.union_box(r["lines"])
        if r["clip"] and geometry.intersection_area(box, r["clip"]) < geometry.area(box) - 1:
            continue  # already partly hidden: an edit there may not show
        if box[2] - box[0] < 60 or box[0] < 0 or box[2] > vw or (viewport_only and box[3] > vh):
            continue
        out.append(i)
    return out


def inject(source: SourceMap, layout: PageLayout, kind: str, rng: random.Random,
           viewport_only: bool = False, avoid: frozenset[int] = frozenset()) -> Injection | None:
    """One injection of `kind`, or None when the page has no suitable target.

    `avoid`: records that already show this defect (a new one there would not be new).
    """
    targets = [i for i in _text_targets(layout, viewport_only) if i not in avoid]
    rng.shuffle(targets)
    aligned = _aligned_members(layout) if kind == "misalignment" else {}
    if kind == "misalignment":  # any member of a row or column of repeated peers, text or not
        targets = [i for i in aligned if layout.records[i]["own"] and i not in avoid]
        rng.shuffle(targets)
    recs = layout.records
    # Backdrops the paint stack gives as one colour (not pixels under an image or gradient).
    judgeable = {m.record: m.bg for m in measure_contrast(layout, DetectorConfig())
                 if m.source == "css"} if kind == "low_contrast" else {}
    for i in targets:
        r = recs[i]
        lines_box = geometry.union_box(r["lines"]) or tuple(r["box"])
        if kind == "low_contrast":
            if i not in judgeable:  # over a picture or gradient: no known background to miss
                continue
            bg = judgeable[i]
            near = wcolor.blend((*((255 - c) for c in bg), 1.0), bg, alpha=0.12)
            decl = f"color: {wcolor.hex_color(near)} !important"
        elif kind == "clipped_text":
            if r["display"] not in BLOCK_DISPLAYS or r["display"].startswith("table"):
                continue  # table boxes ignore max-width/max-height
            height = max(4, int((lines_box[3] - lines_box[1]) * 0.4))
            decl = (f"overflow: hidden !important; white-space: nowrap !important; "
                    f"line-height: normal !important; "
                    f"max-height: {height}px !important; max-width: {int((lines_box[2] - lines_box[0]) * 0.5)}px !important")
        elif kind == "overflow":
            if r["display"] not in BLOCK_DISPLAYS:
                continue
            width = max(20, int((lines_box[2] - lines_box[0]) * 0.3))
            decl = (f"white-space: nowrap !important; overflow: visible !important; "
                    f"width: {width}px !important; max-width: {width}px !important")
        elif kind == "overlap":
            if r["clip"]:
                continue  # moved out of its clipping container it would vanish, not overlap
            partner = _overlap_partner(layout, i, targets)
            if partner is None:
                continue
            dx = recs[partner]["lines"][0][0] - r["lines"][0][0]
            dy = recs[partner]["lines"][0][1] - r["lines"][0][1]
            decl = f"position: relative !important; left: {dx:.0f}px !important; top: {dy:.0f}px !important"
        elif kind == "misalignment":
            side = "top" if aligned[i] == "row" else "left"
            decl = f"position: relative !important; {side}: {rng.choice((4, 6))}px !important"
        else:
            raise ValueError(f"unknown defect kind {kind!r}; choose from {KINDS}")
        html, line = add_inline_style(source, r["sid"], decl)
        return Injection(kind, html, line, i, lines_box)
    return None


def _overlap_partner(layout: PageLayout, i: int, targets: list[int]) -> int | None:
    for j in targets:
        if (j != i and not layout.records[j]["clip"] and not layout.is_ancestor(i, j)
                and not layout.is_ancestor(j, i)):
            a, b = layout.records[i]["lines"][0], layout.records[j]["lines"][0]
            if abs(a[1] - b[1]) > 2 * (a[3] - a[1]) and geometry.area(b) > 0.3 * geometry.area(a):
                return j
    return None


def _aligned_members(layout: PageLayout) -> dict[int, str]:
    """Record -> "row" or "column": members of an alignment group whose edges all coincide."""
    out = {}
    for kind, group in alignment_groups(layout):
        axis = 1 if kind == "row" else 0
        edges = [layout.records[i]["box"][axis] for i in group]
        if max(edges) - min(edges) < 0.5:
            out.update({i: kind for i in group if layout.records[i]["position"] == "static"})
    return out
