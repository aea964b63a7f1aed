"""Visual defect detectors over a rendered page's geometry (see extract.js for the records).

Each detector reads the element records a page produced and returns `Finding`s: a defect kind,
severity in [0, 1], a pixel region, a message, and the record indices it concerns (traced to
source lines afterwards by envs/web/trace.py). Recipes after axe-core
(color-contrast) and Design2Code-style layout checks.

Detectors judge geometry only; they never touch the browser and never import jax.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from envs import geometry
from envs.finding import Finding
from envs import color as wcolor

Box = tuple[float, float, float, float]
IMAGE_TAGS = frozenset({"img", "svg", "canvas", "video", "picture", "iframe", "object", "embed"})
BLOCK_DISPLAYS = ("block", "flex", "grid", "inline-block", "list-item", "table", "table-cell",
                  "inline-flex", "inline-grid", "flow-root")


@dataclasses.dataclass
class DetectorConfig:
    """Thresholds; the defaults keep false positives low on the Design2Code pages (tested)."""

    min_clipped_fraction: float = 0.05   # share of a text line hidden by an overflow clip
    min_spill_px: float = 3.0            # text further than this outside its own block box
    overlap_min_fraction: float = 0.4    # intersection / smaller line area for text vs text
    overlap_leaf_fraction: float = 0.3   # images vs images
    align_tolerance_px: float = 4.0      # 0 < |offset| <= this between peers = a near miss
    align_min_offset_px: float = 0.75    # sub-pixel offsets are rounding, not design
    min_text_chars: int = 2              # contrast: single glyphs are icons / bullets
    strict_canvas_height: bool = False   # slides: content below the canvas bottom overflows


@dataclasses.dataclass
class PageLayout:
    """The extraction result of one page: element records, viewport and document size."""

    records: list[dict[str, Any]]
    viewport: tuple[int, int]
    scroll_size: tuple[int, int]
    root_bg: tuple[float, ...] | None

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


def _text_records(layout: PageLayout) -> list[int]:
    return [i for i, r in enumerate(layout.records) if r["lines"] and r["visible"]]


@dataclasses.dataclass(frozen=True)
class ContrastMeasure:
    """One text element's WCAG measurement (also what axe-core agreement compares)."""

    record: int
    fg: tuple[float, float, float]
    bg: tuple[float, float, float]
    ratio: float
    required: float


def measure_contrast(layout: PageLayout, cfg: DetectorConfig) -> list[ContrastMeasure]:
    """Contrast of every text element whose background is a known colour.

    Skipped, as axe-core leaves them "incomplete": single glyphs, text over images or
    gradients (its own backgrounds or a picture painted beneath it), invisible text (ratio 1).
    """
    out = []
    pictures = [(j, r["box"]) for j, r in enumerate(layout.records)
                if r["tag"] in IMAGE_TAGS and r["visible"] and geometry.area(r["box"]) > 16]
    for i in _text_records(layout):
        rec = layout.records[i]
        if len(rec["text"].replace(" ", "")) < cfg.min_text_chars or not rec["color"]:
            continue
        bg, _ = layout.effective_background(i)
        if bg is None or _over_picture(layout, i, pictures):
            continue
        fg = wcolor.blend(rec["color"], bg, alpha=rec["color"][3] * rec["opacity"])
        ratio = wcolor.contrast_ratio(fg, bg)
        if ratio <= 1.0 + 1e-9:
            continue
        required = wcolor.required_contrast(rec["fontSize"], wcolor.is_bold(rec["fontWeight"]))
        out.append(ContrastMeasure(i, fg, bg, ratio, required))
    return out


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
    """WCAG 2.x contrast against the effective background: 4.5:1, 3:1 for large text."""
    findings = []
    for m in measure_contrast(layout, cfg):
        if m.ratio < m.required:
            rec = layout.records[m.record]
            findings.append(Finding(
                "low_contrast", wcolor.contrast_severity(m.ratio, m.required), _union(rec["lines"]),
                f"text {rec['text'][:40]!r} has contrast {m.ratio:.2f}:1 against its background "
                f"{wcolor.hex_color(m.bg)} (needs {m.required}:1)", (m.record,)))
    return findings


def detect_clipped_text(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Text lines partly hidden by an overflow:hidden/clip ancestor (or its own box)."""
    findings = []
    for i in _text_records(layout):
        rec = layout.records[i]
        clip = rec["clip"]
        if not clip or min(clip[2] - clip[0], clip[3] - clip[1]) <= 2:
            continue  # no clip, or a visually-hidden (screen-reader only) box: intentional
        total = sum(geometry.area(b) for b in rec["lines"])
        visible = sum(geometry.intersection_area(b, clip) for b in rec["lines"])
        hidden = 1.0 - visible / total if total else 0.0
        # Fully hidden text is deliberate (carousels, collapsed menus); a cut is a defect.
        if cfg.min_clipped_fraction <= hidden < 0.98:
            findings.append(Finding(
                "clipped_text", min(1.0, hidden), _union(rec["lines"]),
                f"{hidden:.0%} of text {rec['text'][:40]!r} is cut off by an overflow clip", (i,)))
    return findings


def detect_overflow(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Content outside the canvas, and text spilling out of its own fixed-size block."""
    findings = []
    width, height = layout.viewport
    canvas = (0.0, 0.0, float(width), float(height) if cfg.strict_canvas_height else 1e12)
    page_scrolls_sideways = layout.scroll_size[0] > width + 1
    for i, rec in enumerate(layout.records):
        if not rec["visible"]:
            continue
        boxes = rec["lines"] or ([rec["box"]] if rec["leaf"] else [])
        if rec["clip"]:
            boxes = [b for b in (geometry.intersection(b, rec["clip"]) for b in boxes) if b]
        if boxes and (page_scrolls_sideways or cfg.strict_canvas_height):
            outside = max(geometry.fraction_outside(b, canvas) for b in boxes)
            if outside > 0.02:
                findings.append(Finding(
                    "overflow", min(1.0, outside), _union(boxes),
                    f"<{rec['tag']}> {rec['text'][:30]!r} extends {outside:.0%} beyond the "
                    f"{width}x{height if cfg.strict_canvas_height else 'auto'} canvas", (i,)))
                continue
        if rec["lines"] and rec["display"] in BLOCK_DISPLAYS and rec["ox"] == "visible":
            x0, y0, x1, y1 = rec["box"]
            # Glyph boxes poke a little above/below tight line-heights: vertical spill must
            # exceed half a line before it is a defect.
            spill = max(max(x0 - b[0], b[2] - x1,
                            max(y0 - b[1], b[3] - y1) - 0.5 * (b[3] - b[1])) for b in rec["lines"])
            if spill > cfg.min_spill_px:
                lines_area = sum(geometry.area(b) for b in rec["lines"])
                inside = sum(geometry.intersection_area(b, rec["box"]) for b in rec["lines"])
                findings.append(Finding(
                    "overflow", min(1.0, max(0.2, 1.0 - inside / max(lines_area, 1e-9))),
                    _union(rec["lines"]),
                    f"text {rec['text'][:40]!r} spills {spill:.0f}px out of its <{rec['tag']}> box",
                    (i,)))
    return findings


def _leaf_items(layout: PageLayout) -> list[tuple[Box, int, bool]]:
    """(box, record, is_text) for every visible text line and every image-like element."""
    items = []
    for i, rec in enumerate(layout.records):
        if not rec["visible"]:
            continue
        for line in rec["lines"]:
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
            a, b = layout.records[i], layout.records[j]
            findings[(min(i, j), max(i, j))] = Finding(
                "overlap", min(1.0, frac), geometry.intersection(box, other) or box,
                f"<{a['tag']}> {a['text'][:25]!r} overlaps <{b['tag']}> {b['text'][:25]!r} "
                f"({frac:.0%} of the smaller)", (i, j))
        active.append((box, i, is_text))
    return list(findings.values())


def peer_children(layout: PageLayout) -> dict[int, list[int]]:
    """parent -> its in-flow, visible, block-level children (document order): alignment peers."""
    children: dict[int, list[int]] = {}
    for i, rec in enumerate(layout.records):
        if (rec["visible"] and rec["parent"] >= 0 and rec["display"] in BLOCK_DISPLAYS
                and rec["position"] not in ("absolute", "fixed") and geometry.area(rec["box"]) > 64):
            children.setdefault(rec["parent"], []).append(i)
    return children


def detect_misalignment(layout: PageLayout, cfg: DetectorConfig) -> list[Finding]:
    """Near-miss alignment among siblings: stacked siblings' left edges, row siblings' tops."""
    children = peer_children(layout)
    findings = []
    for sibs in children.values():
        for a, b in zip(sibs, sibs[1:]):
            ra, rb = layout.records[a], layout.records[b]
            if ra["tag"] != rb["tag"]:
                continue  # only peers share an alignment intent
            ba, bb = ra["box"], rb["box"]
            if bb[1] >= ba[3] - 1 and min(ba[2], bb[2]) - max(ba[0], bb[0]) > 0:
                axis, edges = 0, "left/centre/right"   # stacked: compare x edges
            elif bb[0] >= ba[2] - 1 and min(ba[3], bb[3]) - max(ba[1], bb[1]) > 0:
                axis, edges = 1, "top/middle/bottom"   # in a row: compare y edges
            else:
                continue
            offsets = (bb[axis] - ba[axis], (bb[axis] + bb[axis + 2] - ba[axis] - ba[axis + 2]) / 2,
                       bb[axis + 2] - ba[axis + 2])
            offset = min(abs(o) for o in offsets)
            if cfg.align_min_offset_px < offset <= cfg.align_tolerance_px:
                findings.append(Finding(
                    "misalignment", min(1.0, 0.25 + offset / (4 * cfg.align_tolerance_px)),
                    _union([ba, bb]),
                    f"sibling <{ra['tag']}> elements miss a shared {edges} edge by "
                    f"{offset:.1f}px (near-miss alignment)", (a, b)))
    return findings


def detect_all(layout: PageLayout, cfg: DetectorConfig | None = None) -> list[Finding]:
    cfg = cfg or DetectorConfig()
    return [*detect_low_contrast(layout, cfg), *detect_clipped_text(layout, cfg),
            *detect_overflow(layout, cfg), *detect_overlap(layout, cfg),
            *detect_misalignment(layout, cfg)]
