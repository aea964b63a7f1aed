"""Visual defect detectors over a rendered page's geometry (see extract.js for the records).

Each detector reads the element records a page produced and returns `Finding`s: a defect kind,
severity in [0, 1], a pixel region, a message, and the record indices it concerns (traced to
source lines afterwards by envs/web/trace.py). Recipes after axe-core
(color-contrast) and Design2Code-style layout checks.

Detectors judge geometry only; they never touch the browser and never import jax.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs import geometry
from envs.finding import Finding
from envs import color as wcolor
from envs import pixels

Box = tuple[float, float, float, float]
IMAGE_TAGS = frozenset({"img", "svg", "canvas", "video", "picture", "iframe", "object", "embed"})
BLOCK_DISPLAYS = ("block", "flex", "grid", "inline-block", "list-item", "table", "table-cell",
                  "inline-flex", "inline-grid", "flow-root")


@dataclasses.dataclass
class DetectorConfig:
    """Thresholds; the defaults keep false positives low on the Design2Code pages (tested)."""

    min_clipped_fraction: float = 0.15   # share of a text line hidden by an overflow clip (the
    # audit saw 6-12% cuts as glyph edges no reader notices)
    min_spill_px: float = 3.0            # text further than this outside its own block box ...
    min_unseen_spill_em: float = 2.0     # ... or this many font sizes out of a box that paints
    # nothing (the audit saw count badges pushed 1 em past their invisible box by a float)
    max_cut_line: float = 0.85           # a line cut by more than this shows as a sliver, not text
    min_line_cut: float = 0.25           # a line box cut by less loses only ascender/descender room
    # (the audit saw 20% cuts of a footer's lines with every letter whole)
    overlap_min_fraction: float = 0.4    # intersection / smaller line area for text vs text
    overlap_leaf_fraction: float = 0.3   # images vs images
    align_min_offset_px: float = 2.0     # off the group's line by more than this is visible
    align_max_offset: float = 0.5        # ... and by less than this share of the member's size
    align_same_size_px: float = 2.0      # members of one alignment group repeat one size
    align_min_members: int = 2           # 3 would drop pairs: recall of a nudged card fell to 62%
    occlusion_min_fraction: float = 0.25  # share of a text line painted over ...
    occlusion_min_glyphs: float = 2.5     # ... or this many font-size squares of its glyphs
    min_text_chars: int = 2              # contrast: single glyphs are icons / bullets
    # Icons (icon fonts, <i>) are shapes: the audit saw them at 1.6-2.1:1 and not below 1.3:1.
    icon_min_contrast: float = 1.5
    strict_canvas_height: bool = False   # slides: content below the canvas bottom overflows
    max_blamed_records: int = 12         # overflow on a fixed canvas: content sharing the blame


@dataclasses.dataclass
class PageLayout:
    """The extraction result of one page: element records, viewport and document size."""

    records: list[dict[str, Any]]
    viewport: tuple[int, int]
    scroll_size: tuple[int, int]
    root_bg: tuple[float, ...] | None
    pixels: np.ndarray | None = None  # the screenshot (page coordinates), for unknown backdrops

    @classmethod
    def from_extraction(cls, data: dict[str, Any]) -> "PageLayout":
        return cls(records=data["elements"], viewport=tuple(data["viewport"]),
                   scroll_size=tuple(data["scroll"]), root_bg=data.get("rootBg"))

    def ancestors(self, idx: int):
        parent = self.records[idx]["parent"]
        while parent >= 0:
            yield parent
            parent = self.records[parent]["parent"]

    def is_ancestor(self, maybe_ancestor: int, idx: int) -> bool:
        return any(a == maybe_ancestor for a in self.ancestors(idx))

    def backdrop(self, idx: int) -> tuple[tuple[float, float, float] | None, int | None]:
        """What is painted behind idx's text: the hit-tested stack when an element that is not
        its ancestor lies beneath (a box laid behind it), else its ancestors' backgrounds."""
        under = self.records[idx].get("under")
        if not under:
            return self.effective_background(idx)
        layers, image = under
        if image:
            return None, idx
        base = wcolor.WHITE
        if not layers or layers[-1][3] < 1:
            if self.root_bg and self.root_bg[3] > 0:
                base = wcolor.blend(self.root_bg, base)
        for layer in reversed(layers):
            base = wcolor.blend(layer, base)
        return base, self.effective_background(idx)[1]

    def effective_background(self, idx: int) -> tuple[tuple[float, float, float] | None, int | None]:
        """The opaque colour behind idx's text, from its own and its ancestors' backgrounds.

        Returns (None, record) when an image or gradient is part of that stack (unknown, as axe
        reports "incomplete"); the record is the one whose background decided the colour.
        """
        layers = []
        chain = [idx, *self.ancestors(idx)]
        decided = None
        for j in chain:
            rec = self.records[j]
            if rec["bgImage"]:
                return None, j
            bg = rec["bg"]
            if bg and bg[3] > 0:
                layers.append(bg)
                decided = j if decided is None else decided
                if bg[3] >= 1:
                    break
        base = wcolor.WHITE
        if not layers or layers[-1][3] < 1:
            root = self.root_bg
            if root and root[3] > 0:
                base = wcolor.blend(root, base)
        for layer in reversed(layers):
            base = wcolor.blend(layer, base)
        return base, decided


def _union(boxes: Sequence[Sequence[float]]) -> Box:
    return geometry.union_box(boxes) or (0.0, 0.0, 0.0, 0.0)


_ICON_FONT = re.compile(r"icon|material|awesome|symbols|glyph", re.I)


def is_icon(rec: dict[str, Any]) -> bool:
    """Text that is an icon: set in an icon font (Material Icons ligatures, Font Awesome), or an
    <i> element. Judged by the non-text rule (WCAG 1.4.11: 3:1 to be seen), never as prose;
    offline, its ligature name may show as a word, which is the renderer's doing, not the page's."""
    return rec["tag"] == "i" or bool(_ICON_FONT.search(rec.get("fontFamily") or ""))


def paints_box(rec: dict[str, Any]) -> bool:
    """Does the element paint its own box (a background, a border or an image), so that a reader
    sees where it ends?"""
    return bool(rec["border"] or rec["bgImage"] or rec["leaf"] or (rec["bg"] and rec["bg"][3] > 0.1))


def _text_records(layout: PageLayout) -> list[int]:
    return [i for i, r in enumerate(layout.records) if r["lines"] and r["visible"]]


@dataclasses.dataclass(frozen=True)
class ContrastMeasure:
    """One text element's WCAG measurement (also what axe-core agreement compares).

    `source` says where the backdrop came from: "css" (the painted stack's colours, as axe-core
    reads them) or "pixels" (the screenshot under the glyphs, for images and gradients)."""

    record: int
    fg: tuple[float, float, float]
    bg: tuple[float, float, float]
    ratio: float
    required: float
    source: str = "css"


def measure_contrast(layout: PageLayout, cfg: DetectorConfig) -> list[ContrastMeasure]:
    """Contrast of every text element against what is painted behind its glyphs.

    The backdrop is the hit-tested paint stack under the text (a box laid behind it counts,
    not only its ancestors); over an image or gradient, the screenshot's pixels under the glyphs
    when the layout carries them (axe-core leaves these "incomplete"). Skipped: single glyphs
    (icons, bullets), text hidden on purpose, invisible text (ratio 1).
    """
    out = []
    pictures = [(j, r["box"]) for j, r in enumerate(layout.records)
                if r["tag"] in IMAGE_TAGS and r["visible"] and geometry.area(r["box"]) > 16]
    for i in _text_records(layout):
        rec = layout.records[i]
        if len(rec["text"].replace(" ", "")) < cfg.min_text_chars or not rec["color"]:
            continue
        if out_of_sight(layout, i):
            continue
        bg, _ = layout.backdrop(i)
        source = "css"
        if bg is None or _over_picture(layout, i, pictures):
            bg = _pixel_backdrop(layout, i)
            source = "pixels"
            if bg is None:
                continue
        fg = wcolor.blend(rec["color"], bg, alpha=rec["color"][3] * rec["opacity"])
        ratio = wcolor.contrast_ratio(fg, bg)
        if ratio <= 1.0 + 1e-9:
            continue
        required = 3.0 if is_icon(rec) else wcolor.required_contrast(rec["fontSize"], wcolor.is_bold(rec["fontWeight"]))
        out.append(ContrastMeasure(i, fg, bg, ratio, required, source))
    return out


def _pixel_backdrop(layout: PageLayout, idx: int) -> tuple[float, float, float] | None:
    if layout.pixels is None:
        return None
    rec = layout.records[idx]
    box = _union(rec["lines"])
    if rec["clip"]:
        box = geometry.intersection(box, rec["clip"]) or box
    bg = pixels.behind_text(layout.pixels, box, rec["color"][:3])
    return None if bg is None else (bg[0], bg[1], bg[2])


def _over_picture(layout: PageLayout, idx: int, pictures: list[tuple[int, Sequence[float]]]) -> bool:
    """Is most of idx's text painted over an image that is not part of idx (a hero banner)?"""
    lines = layout.records[idx]["lines"]
    total = sum(geometry.area(b) for b in lines)
    for j, box in pictures:
        covered = sum(geometry.intersection_area(b, box) for b in lines)
        if total and covered > 0.5 * total and not layout.is_ancestor(idx, j):
            return True
    return False


def detect_low_contrast(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """WCAG 2.x contrast against the backdrop: 4.5:1, 3:1 for large text. Text that is hard to
    read (`envs.color.hard_to_read`: APCA's minimum for its CSS font size and weight) is a
    defect whose severity grows with how far below the threshold it is
    (`envs.color.contrast_severity`); text only below the WCAG line is an advisory finding
    (`envs.color.contrast_verdict`), a note with its ratio and threshold. Icons follow their own
    visibility rule: a defect below `icon_min_contrast`."""
    findings = []
    for m in measure_contrast(layout, cfg):
        rec = layout.records[m.record]
        if is_icon(rec):
            if m.ratio < cfg.icon_min_contrast:  # an icon is a shape: it only has to be seen
                findings.append(Finding(
                    "low_contrast", wcolor.contrast_severity(m.ratio, cfg.icon_min_contrast),
                    _union(rec["lines"]),
                    f"icon {rec['text'][:40]!r} has contrast {m.ratio:.2f}:1 against its background "
                    f"{wcolor.hex_color(m.bg)} (an icon needs {cfg.icon_min_contrast}:1 to be seen, "
                    f"WCAG 1.4.11 asks {m.required}:1; hard to see)", (m.record,)))
        elif m.ratio < m.required:
            verdict, advisory = wcolor.contrast_verdict(m.ratio, m.required, m.fg, m.bg, rec["fontSize"],
                                                        wcolor.is_bold(rec["fontWeight"]))
            findings.append(Finding(
                "low_contrast", wcolor.contrast_severity(m.ratio, m.required), _union(rec["lines"]),
                f"text {rec['text'][:40]!r} has contrast {m.ratio:.2f}:1 against its background "
                f"{wcolor.hex_color(m.bg)} ({verdict})", (m.record,), advisory=advisory))
    return findings


def hidden_on_purpose(layout: PageLayout, idx: int) -> bool:
    """Elements a page hides deliberately, which no reader sees and no layout defect (overflow,
    clipping, overlap, alignment) concerns: placed out of sight (`out_of_sight`), or text drawn
    in its backdrop's own colour (icon fonts' label text, white on white). Contrast still judges
    the latter: unreadable text is its defect."""
    rec = layout.records[idx]
    if out_of_sight(layout, idx):
        return True
    if rec["lines"] and rec["color"]:
        bg, _ = layout.effective_background(idx)
        if bg is not None and wcolor.contrast_ratio(
                wcolor.blend(rec["color"], bg, alpha=rec["color"][3] * rec["opacity"]), bg) < 1.05:
            return True
    return False


def out_of_sight(layout: PageLayout, idx: int) -> bool:
    """Zero-size boxes, screen-reader-only text (a clipping box of 1-2 px), boxes entirely off
    the canvas to the left or top (skip links at x = -9800), text pushed far out of its own box
    (text-indent image replacement)."""
    rec = layout.records[idx]
    x0, y0, x1, y1 = rec["box"]
    if (x1 - x0) * (y1 - y0) < 2 and not rec["lines"]:
        return True
    clip = rec["clip"]
    if clip and min(clip[2] - clip[0], clip[3] - clip[1]) <= 2:
        return True  # screen-reader-only text: a 1-px clipping box
    boxes = rec["lines"] or [rec["box"]]
    if all(b[2] <= 0 or b[3] <= 0 for b in boxes):
        return True
    return bool(rec["lines"]) and all(geometry.intersection_area(b, rec["box"]) == 0 and
                                      min(abs(b[0] - x0), abs(b[2] - x1)) > 300 for b in rec["lines"])


def detect_clipped_text(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Text lines partly hidden by an overflow:hidden/clip ancestor (or its own box)."""
    findings = []
    for i in _text_records(layout):
        rec = layout.records[i]
        clip = rec["clip"]
        if not clip or min(clip[2] - clip[0], clip[3] - clip[1]) <= 2 or hidden_on_purpose(layout, i):
            continue  # no clip, a visually-hidden (screen-reader only) box, or hidden on purpose
        if rec["textOverflow"] == "ellipsis":
            continue  # truncated with an ellipsis: the page says so itself
        total = sum(geometry.area(b) for b in rec["lines"])
        visible = sum(geometry.intersection_area(b, clip) for b in rec["lines"])
        hidden = 1.0 - visible / total if total else 0.0
        # Fully hidden text is deliberate (carousels, collapsed menus); a cut is a defect, and so
        # is text pushed wholly below the clipping box of a fixed canvas (a slide's overflow).
        pushed_under = cfg.strict_canvas_height and all(
            b[1] >= clip[3] - 1 and b[0] >= clip[0] - 1 and b[2] <= clip[2] + 1 for b in rec["lines"])
        if not pushed_under and (not _cuts_a_line(rec["lines"], clip, cfg)
                                 or (not cfg.strict_canvas_height and _scrolls_to(layout, i, clip))):
            continue
        if cfg.min_clipped_fraction <= hidden and (hidden < 0.98 or pushed_under):
            findings.append(Finding(
                "clipped_text", min(1.0, hidden), _union(rec["lines"]),
                f"{hidden:.0%} of text {rec['text'][:40]!r} is cut off by an overflow clip",
                (i, *_pushed_by(layout, i, clip, cfg))))
    return findings


def _cuts_a_line(lines: Sequence[Sequence[float]], clip: Sequence[float], cfg: DetectorConfig) -> bool:
    """Does the clip cut through the glyphs of a line? Lines wholly shown or wholly hidden (a
    clip on a line boundary: a line clamp, a fixed-height teaser) show no cut, nor does a line
    whose cut leaves a sliver (more than `max_cut_line` hidden) or only its ascender room
    (less than `min_line_cut` of its height)."""
    for b in lines:
        shown = geometry.intersection(b, clip)
        if not shown:
            continue
        cut_y = 1.0 - (shown[3] - shown[1]) / max(b[3] - b[1], 1e-9)
        cut_x = 1.0 - (shown[2] - shown[0]) / max(b[2] - b[0], 1e-9)
        if cfg.min_line_cut <= cut_y <= cfg.max_cut_line or cut_x >= 0.05 and cut_y <= cfg.max_cut_line:
            return True
    return False


def _scrolls_to(layout: PageLayout, idx: int, clip: Sequence[float]) -> bool:
    """Is the text cut by a scroll container (overflow auto/scroll on the cut's axis), so that a
    reader scrolls to the rest, as in a code block or a scrolling panel? Pages only: a slide
    does not scroll."""
    text = _union(layout.records[idx]["lines"])
    cuts = [side for side in range(4)  # the clip's edges the text crosses: left, top, right, bottom
            if (text[side] < clip[side] - 0.5 if side < 2 else text[side] > clip[side] + 0.5)]
    for a in (idx, *layout.ancestors(idx)):
        rec = layout.records[a]
        for side in cuts:  # the scroller's padding edge is the clip's edge (within its border)
            inset = clip[side] - rec["box"][side] if side < 2 else rec["box"][side] - clip[side]
            if rec["oy" if side % 2 else "ox"] in ("auto", "scroll") and -0.5 <= inset <= 20:
                return True
    return False


def _pushed_by(layout: PageLayout, idx: int, clip: Sequence[float], cfg: DetectorConfig) -> tuple[int, ...]:
    """Text cut at the bottom of a clipping box was pushed there: the content before it in that
    box shares the blame (the lines that added or enlarged it)."""
    if max(b[3] for b in layout.records[idx]["lines"]) <= clip[3]:
        return ()
    owner = next((a for a in layout.ancestors(idx) if layout.records[a]["oy"] != "visible"), None)
    return () if owner is None else _content_before(layout, owner, idx, cfg.max_blamed_records)


def detect_overflow(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Content outside the canvas, and text spilling out of its own fixed-size block.

    On a fixed canvas (slides) content pushed below the bottom is blamed on its cause too: one
    finding per pushed container names the victims and the content before them in that
    container (the lines that added or enlarged it). Elements hidden on purpose are skipped."""
    findings = []
    pushed: dict[int, list[tuple[int, float, list]]] = {}
    width, height = layout.viewport
    canvas = (0.0, 0.0, float(width), float(height) if cfg.strict_canvas_height else 1e12)
    page_scrolls_sideways = layout.scroll_size[0] > width + 1
    for i, rec in enumerate(layout.records):
        if not rec["visible"] or hidden_on_purpose(layout, i):
            continue
        boxes = rec["lines"] or ([rec["box"]] if rec["leaf"] else [])
        if rec["clip"]:
            boxes = [b for b in (geometry.intersection(b, rec["clip"]) for b in boxes) if b]
        if boxes and (page_scrolls_sideways or cfg.strict_canvas_height):
            outside = max(geometry.fraction_outside(b, canvas) for b in boxes)
            if outside > 0.02:
                # Pushed past the top or bottom edge (a centred column grows both ways).
                pushed_out = cfg.strict_canvas_height and all(b[0] >= -1 and b[2] <= width + 1 for b in boxes) \
                    and (max(b[3] for b in boxes) > height + 1 or min(b[1] for b in boxes) < -1)
                container = _pushed_container(layout, i) if pushed_out else None
                if container is not None:
                    pushed.setdefault(container, []).append((i, outside, boxes))
                    continue
                findings.append(Finding(
                    "overflow", min(1.0, outside), _union(boxes),
                    f"<{rec['tag']}> {rec['text'][:30]!r} extends {outside:.0%} beyond the "
                    f"{width}x{height if cfg.strict_canvas_height else 'auto'} canvas", (i,)))
                continue
        if rec["lines"] and rec["display"] in BLOCK_DISPLAYS and rec["ox"] == "visible" and not is_icon(rec):
            x0, y0, x1, y1 = rec["box"]
            # Glyph boxes poke a little above/below tight line-heights: vertical spill must
            # exceed half a line before it is a defect.
            spill = max(max(x0 - b[0], b[2] - x1,
                            max(y0 - b[1], b[3] - y1) - 0.5 * (b[3] - b[1])) for b in rec["lines"])
            if spill > cfg.min_spill_px and (paints_box(rec) or spill > cfg.min_unseen_spill_em * rec["fontSize"]):
                lines_area = sum(geometry.area(b) for b in rec["lines"])
                inside = sum(geometry.intersection_area(b, rec["box"]) for b in rec["lines"])
                findings.append(Finding(
                    "overflow", min(1.0, max(0.2, 1.0 - inside / max(lines_area, 1e-9))),
                    _union(rec["lines"]),
                    f"text {rec['text'][:40]!r} spills {spill:.0f}px out of its <{rec['tag']}> box",
                    (i,)))
    for container, victims in pushed.items():
        first = victims[0][0]
        blamed = _content_before(layout, container, first, cfg.max_blamed_records)
        region = _union([b for _, _, boxes in victims for b in boxes])
        tag = layout.records[container]["tag"]
        findings.append(Finding(
            "overflow", min(1.0, max(o for _, o, _ in victims)), region,
            f"the content of <{tag}> runs {max(region[3] - height, -region[1]):.0f}px past the edge "
            f"of the {width}x{height} canvas ({len(victims)} element(s) pushed out); shorten or "
            f"shrink what it holds",
            (*[v for v, _, _ in victims[:4]], *blamed, container)))
    return findings


def _pushed_container(layout: PageLayout, idx: int) -> int | None:
    """The outermost ancestor (below <body>, not beyond a positioned box) that starts on the
    canvas: the container whose content grew past an edge. None for positioned elements
    (placed, not pushed)."""
    if layout.records[idx]["position"] in ("absolute", "fixed"):
        return None
    found = None
    for a in layout.ancestors(idx):
        rec = layout.records[a]
        if rec["tag"] in ("body", "html"):
            break
        if rec["box"][1] < layout.viewport[1]:
            found = a
        if rec["position"] in ("absolute", "fixed"):
            break  # a placed box: its content flows inside it, pushed by what it holds
    return found


def _content_before(layout: PageLayout, container: int, idx: int, limit: int) -> tuple[int, ...]:
    """In-flow, visible content records of `container` before idx (document order): whatever
    pushed idx down is among them. Half of `limit` goes to the nearest, half to the largest
    (the most lines take the most room)."""
    before = [j for j in range(idx - 1, container, -1)
              if (rec := layout.records[j])["visible"] and (rec["lines"] or rec["leaf"])
              and rec["position"] not in ("absolute", "fixed") and layout.is_ancestor(container, j)]
    nearest = before[:limit - limit // 2]
    size = {j: sum(geometry.area(b) for b in layout.records[j]["lines"]) or geometry.area(layout.records[j]["box"])
            for j in before[len(nearest):]}
    largest = sorted(size, key=size.get, reverse=True)[:limit // 2]
    return tuple(nearest + largest)


def _leaf_items(layout: PageLayout) -> list[tuple[Box, int, bool]]:
    """(box, record, is_text) for every visible text line and every image-like element. A line
    is its glyphs' core: the line box less a fifth of the font size above and below (ascender
    and descender room, which tight line heights let neighbouring lines share unseen)."""
    items = []
    for i, rec in enumerate(layout.records):
        if not rec["visible"] or hidden_on_purpose(layout, i):
            continue
        for line in rec["lines"]:
            line = glyph_core(line, rec["fontSize"])
            box = geometry.intersection(line, rec["clip"]) if rec["clip"] else tuple(line)
            if box and geometry.area(box) > 4:
                items.append((box, i, True))
        if rec["tag"] in IMAGE_TAGS and geometry.area(rec["box"]) > 16:
            box = geometry.intersection(rec["box"], rec["clip"]) if rec["clip"] else tuple(rec["box"])
            if box:
                items.append((box, i, False))
    return items


def detect_overlap(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Text lines of unrelated elements over each other; images over images."""
    items = sorted(_leaf_items(layout), key=lambda t: t[0][1])
    findings: dict[tuple[int, int], Finding] = {}
    active: list[tuple[Box, int, bool]] = []
    for box, i, is_text in items:
        active = [a for a in active if a[0][3] > box[1]]
        for other, j, other_text in active:
            if i == j or (min(i, j), max(i, j)) in findings:
                continue
            if is_text != other_text:
                continue  # text over a picture is usually a caption or badge by design
            frac = geometry.overlap_over_min(box, other)
            need = cfg.overlap_min_fraction if is_text else cfg.overlap_leaf_fraction
            if frac <= need or layout.is_ancestor(i, j) or layout.is_ancestor(j, i):
                continue
            if not is_text and (frac >= 0.9 or a_canvas_pair(layout, i, j)):
                continue  # a picture laid on another (a slideshow, a hover swap, a backdrop) or
                # drawing layers (canvases stack by design; what they draw the layout never knows)
            if is_text and (_buried(layout, i, j) or _buried(layout, j, i)):
                continue  # a text painted over wholly by something else collides with nothing
            a, b = layout.records[i], layout.records[j]
            findings[(min(i, j), max(i, j))] = Finding(
                "overlap", min(1.0, frac), geometry.intersection(box, other) or box,
                f"<{a['tag']}> {a['text'][:25]!r} overlaps <{b['tag']}> {b['text'][:25]!r} "
                f"({frac:.0%} of the smaller)", (i, j))
        active.append((box, i, is_text))
    return list(findings.values())


def glyph_core(line: Sequence[float], font_size: float) -> Box:
    """A line box less a fifth of the font size above and below: where its letters are (the rest
    is ascender and descender room that tight line heights let neighbours share unseen). The
    same inset as extract.js's occlusion test."""
    x0, y0, x1, y1 = line
    inset = 0.2 * font_size if y1 - y0 > 0.4 * font_size + 2 else 0.0
    return (x0, y0 + inset, x1, y1 - inset)


def a_canvas_pair(layout: PageLayout, i: int, j: int) -> bool:
    return layout.records[i]["tag"] == layout.records[j]["tag"] == "canvas"


def _buried(layout: PageLayout, idx: int, other: int) -> bool:
    """Is idx's text wholly painted over by a third element (`cover` of extract.js)?"""
    cover = layout.records[idx].get("cover")
    return bool(cover) and cover[0] >= 0.9 and cover[2] != other


def peer_children(layout: PageLayout) -> dict[int, list[int]]:
    """parent -> its in-flow, visible, block-level children (document order): alignment peers."""
    children: dict[int, list[int]] = {}
    for i, rec in enumerate(layout.records):
        if (rec["visible"] and rec["parent"] >= 0 and rec["display"] in BLOCK_DISPLAYS
                and rec["position"] not in ("absolute", "fixed") and geometry.area(rec["box"]) > 64):
            children.setdefault(rec["parent"], []).append(i)
    return children


def detect_occlusion(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Text painted over by something opaque, whatever its place in the tree (a child badge,
    a sibling box, an element positioned from elsewhere): the part of its line boxes where the
    browser's hit test finds another element on top (extract.js `cover`), when it hides a
    quarter of a line or a few glyphs. Reported as overlap and traced to the covering element
    first, then the covered text."""
    findings = []
    for i in _text_records(layout):
        rec = layout.records[i]
        cover = rec.get("cover")
        if not cover:
            continue
        worst, hidden_px, by_idx = cover
        if worst < cfg.occlusion_min_fraction and \
                hidden_px < cfg.occlusion_min_glyphs * rec["fontSize"] ** 2:
            continue
        if len(rec["text"].replace(" ", "")) < cfg.min_text_chars or hidden_on_purpose(layout, i):
            continue
        by = layout.records[by_idx]
        if by["text"] and by["text"] == rec["text"]:
            continue  # the same words drawn twice on one spot read as one
        cores = [glyph_core(b, rec["fontSize"]) for b in rec["lines"][:8]]
        area = sum(geometry.intersection_area(b, rec["clip"]) if rec["clip"] else geometry.area(b) for b in cores)
        if hidden_px >= 0.98 * area and _layered_on_purpose(layout, i, by_idx):
            continue
        findings.append(Finding(
            "overlap", min(1.0, 0.3 + worst), _union(rec["lines"]),
            f"text {rec['text'][:30]!r} is hidden under <{by['tag']}> {by['text'][:20]!r} painted "
            f"over it ({worst:.0%} of a line)", (by_idx, i)))
    return findings


def _layered_on_purpose(layout: PageLayout, victim: int, coverer: int) -> bool:
    """A text wholly hidden under a sibling (a label under its input, a skip link under the
    header, text under its own image) was layered there by design; a box laid over it from
    elsewhere in the page was not."""
    return layout.records[coverer]["parent"] == layout.records[victim]["parent"]


def alignment_groups(layout: PageLayout) -> list[tuple[str, list[int]]]:
    """Rows and columns of repeated peers, as a reader groups them: in-flow block siblings of one
    tag that share a row (vertical extents overlap) with one height, or a column (horizontal
    extents overlap) with one width, within `align_same_size_px`."""
    groups = []
    for sibs in peer_children(layout).values():
        by_tag: dict[str, list[int]] = {}
        for i in sibs:
            if not hidden_on_purpose(layout, i):
                by_tag.setdefault(layout.records[i]["tag"], []).append(i)
        for members in by_tag.values():
            members = [i for i in members if not _one_glyph(layout, i)]
            for axis in (1, 0):  # rows (compare tops), columns (compare lefts)
                if axis == 0:  # a column stacks blocks; inline boxes wrapping in a flow do not
                    members = [i for i in members if not layout.records[i]["display"].startswith("inline")]
                boxes = {i: layout.records[i]["box"] for i in members}
                for group in geometry.alignment_bands(boxes, members, axis):
                    if len(group) >= 2 and geometry.laid_out_as(boxes, group, axis):
                        groups.append(("row" if axis == 1 else "column", group))
    return groups


def _one_glyph(layout: PageLayout, idx: int) -> bool:
    """A member whose only text is one glyph (an arrow, a bullet, a separator) and no picture:
    its box is room around a symbol, which is centred, not aligned by its edge."""
    chars, j = 0, idx
    while j < len(layout.records) and (j == idx or layout.is_ancestor(idx, j)):
        rec = layout.records[j]
        if rec["leaf"] and j != idx:
            return False
        chars += len(rec["text"].replace(" ", ""))
        if chars > 1:
            return False
        j += 1
    return chars == 1


def detect_misalignment(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """A member of a row (column) of repeated peers off the line the others share, by a visible
    amount: more than `align_min_offset_px` (sub-2-px jitter is invisible) and less than
    `align_max_offset` of its size (further is a different layout, not a slip), in a group of at
    least `align_min_members`. The line is the edge most members share."""
    findings: dict[int, Finding] = {}
    for kind, group in alignment_groups(layout):
        axis = 1 if kind == "row" else 0
        edge = {i: layout.records[i]["box"][axis] for i in group}
        shared = geometry.shared_line(edge)
        if shared is None or len(group) < cfg.align_min_members:
            continue
        line, pair = shared
        for i in group:
            box = layout.records[i]["box"]
            offset = edge[i] - line
            if not cfg.align_min_offset_px < abs(offset) <= cfg.align_max_offset * (box[axis + 2] - box[axis]):
                continue
            if pair and len(group) > 2:
                continue  # no line most members share: nothing to be off
            involved = tuple(group) if pair else (i,)
            rec = layout.records[i]
            prev = findings.get(i)
            where = "down" if axis == 1 and offset > 0 else "up" if axis == 1 else \
                "right" if offset > 0 else "left"
            message = (f"<{rec['tag']}> {rec['text'][:25]!r} sits {abs(offset):.0f}px {where} of the "
                       f"{kind} of {len(group)} matching elements it belongs to")
            if prev is not None:
                message = prev.message + "; " + message
                involved = tuple(dict.fromkeys(prev.records + involved))
            findings[i] = Finding("misalignment", min(1.0, 0.3 + abs(offset) / 30),
                                  _union([layout.records[k]["box"] for k in involved]), message,
                                  involved)
    return list(findings.values())


def detect_all(layout: PageLayout, cfg: DetectorConfig | None = None) -> list[Finding]:
    cfg = cfg or DetectorConfig()
    overlaps = detect_overlap(layout, cfg)
    seen = {frozenset(f.records) for f in overlaps}
    hidden = [f for f in detect_occlusion(layout, cfg) if frozenset(f.records) not in seen]
    return [*detect_low_contrast(layout, cfg), *detect_clipped_text(layout, cfg),
            *detect_overflow(layout, cfg), *overlaps, *hidden, *detect_misalignment(layout, cfg)]
