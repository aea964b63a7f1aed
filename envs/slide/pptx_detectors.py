"""Defects of a rendered python-pptx deck, from shape geometry and LibreOffice's text spans.

* overflow: text that LibreOffice laid out beyond its shape's frame (it grows boxes instead of
  clipping), and shapes or text outside the slide (as LibreOffice renders them);
* overlap: content shapes (not full-slide backdrops, not empty) whose rendered extents (frame
  plus text) intersect; a filled, text-less shape that holds another is a card behind it only
  when it is painted first (earlier in the slide's shape tree) or its fill lets the other show
  through (alpha < 0.9): one painted over a text hides it;
* low_contrast: each span's PDF colour against the rendered pixels around it (WCAG, pt sizes);
* misalignment: a shape of a row (column) of repeated peers (one kind, one height in a row, one
  width in a column) off the line the others share by more than 2 px and less than half its
  size (`envs.geometry.alignment_bands`, as the page detectors group them); and near-miss
  left/centre/right edges of other stacked shapes and top/middle/bottom edges of shapes in a row.

Findings name shape indices (DeckView.shapes); envs/slide/pptx_env.py traces them to lines.
Each slide is judged in its own pixel frame; regions are offset later for multi-slide renders.
Never imports jax.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from envs import geometry
from envs.slide.aeslides import VisualItem
from envs.slide.deck import DeckView, ShapeInfo
from envs import color as wcolor
from envs.finding import Finding


@dataclasses.dataclass
class PptxDetectorConfig:
    frame_tolerance_px: float = 4.0
    min_outside_fraction: float = 0.02
    overlap_min_fraction: float = 0.1
    card_contains_fraction: float = 0.95
    align_tolerance_px: float = 4.0
    align_min_offset_px: float = 0.75
    peer_min_offset_px: float = 2.0   # a peer off its row's (column's) line by more than this
    peer_max_offset: float = 0.5      # ... and by less than this share of its size


def text_extent(view: DeckView, shape_idx: int) -> tuple[float, float, float, float] | None:
    return geometry.union_box(s.box for s in view.spans if s.shape == shape_idx)


def rendered_box(view: DeckView, shape_idx: int):
    shape = view.shapes[shape_idx]
    extent = text_extent(view, shape_idx)
    return geometry.union_box([shape.box] + ([extent] if extent else []))


def _content(view: DeckView, slide: int) -> list[int]:
    return [k for k, s in enumerate(view.shapes) if s.slide == slide and not s.backdrop
            and (s.text.strip() or s.filled or s.lined or s.kind in ("picture", "table", "chart"))]


def detect_overflow(view: DeckView, slide: int, cfg: PptxDetectorConfig) -> list[Finding]:
    canvas = (0.0, 0.0, float(view.width), float(view.height))
    out = []
    for k in [k for k, s in enumerate(view.shapes) if s.slide == slide]:
        shape = view.shapes[k]
        extent = text_extent(view, k)
        if extent:
            tol = cfg.frame_tolerance_px
            x0, y0, x1, y1 = shape.box
            spill = max(x0 - extent[0], extent[2] - x1, y0 - extent[1], extent[3] - y1)
            if spill > tol:
                outside = geometry.fraction_outside(extent, (x0 - tol, y0 - tol, x1 + tol, y1 + tol))
                out.append(Finding("overflow", min(1.0, max(0.2, outside)), extent,
                                   f"text of {shape.name!r} runs {spill:.0f}px outside its frame "
                                   f"(LibreOffice grew the box)", (k,)))
                continue
        box = rendered_box(view, k)
        outside = geometry.fraction_outside(box, canvas)
        if outside > cfg.min_outside_fraction:
            out.append(Finding("overflow", min(1.0, outside), box,
                               f"{shape.name!r} lies {outside:.0%} outside the slide", (k,)))
    return out


def detect_overlap(view: DeckView, slide: int, cfg: PptxDetectorConfig) -> list[Finding]:
    content = _content(view, slide)
    out = []
    for n, a in enumerate(content):
        for b in content[n + 1:]:
            sa, sb = view.shapes[a], view.shapes[b]
            ba, bb = rendered_box(view, a), rendered_box(view, b)
            frac = geometry.overlap_over_min(ba, bb)
            if frac <= cfg.overlap_min_fraction or _is_card(sa, ba, bb, cfg) \
                    or (_is_card(sb, bb, ba, cfg) and not sb.opaque):
                continue  # a is painted first: only a card under b, or a see-through one over it, is a backdrop
            out.append(Finding("overlap", min(1.0, frac), geometry.intersection(ba, bb),
                               f"{sa.name!r} and {sb.name!r} overlap ({frac:.0%} of the smaller)", (a, b)))
    return out


def _is_card(shape: ShapeInfo, box, other_box, cfg: PptxDetectorConfig) -> bool:
    """A filled or picture shape without text that holds the other one is its background."""
    holds = geometry.intersection_area(box, other_box) >= cfg.card_contains_fraction * geometry.area(other_box)
    return holds and not shape.text.strip() and (shape.filled or shape.kind == "picture") \
        and geometry.area(box) > geometry.area(other_box)


def detect_low_contrast(view: DeckView, slide: int, rgb: np.ndarray) -> list[Finding]:
    """Span colour vs the median rendered colour of a 3-px ring just outside the span."""
    out = []
    h, w = rgb.shape[:2]
    for span in (s for s in view.spans if s.slide == slide and len(s.text.replace(" ", "")) >= 2):
        x0, y0, x1, y1 = (int(round(v)) for v in span.box)
        ring = []
        for ys, xs in ((slice(y0 - 3, y0), slice(x0 - 3, x1 + 3)), (slice(y1, y1 + 3), slice(x0 - 3, x1 + 3)),
                       (slice(y0, y1), slice(x0 - 3, x0)), (slice(y0, y1), slice(x1, x1 + 3))):
            ys = slice(max(0, ys.start), min(h, ys.stop))
            xs = slice(max(0, xs.start), min(w, xs.stop))
            patch = rgb[ys, xs].reshape(-1, 3)
            if patch.size:
                ring.append(patch)
        if not ring:
            continue
        bg = tuple(float(v) for v in np.median(np.concatenate(ring), axis=0))
        ratio = wcolor.contrast_ratio(span.rgb, bg)
        size_px = span.size_pt * 96 / 72
        required = wcolor.required_contrast(size_px, span.bold)
        if ratio < required:
            verdict, advisory = wcolor.contrast_verdict(ratio, required, span.rgb, bg, size_px, span.bold)
            out.append(Finding("low_contrast", wcolor.contrast_severity(ratio, required), span.box,
                               f"text {span.text[:40]!r} has contrast {ratio:.2f}:1 against "
                               f"{wcolor.hex_color(bg)} ({verdict})",
                               (span.shape,) if span.shape is not None else (), advisory=advisory))
    return out


def detect_peer_misalignment(view: DeckView, slide: int, cfg: PptxDetectorConfig
                             ) -> tuple[list[Finding], set[frozenset[int]]]:
    """A shape of a row (column) of peers off the line the others share, by a visible amount;
    a pair off each other names both. Also: the pairs of shapes of the groups reported."""
    by_kind: dict[str, list[int]] = {}
    for k in _content(view, slide):
        by_kind.setdefault(view.shapes[k].kind, []).append(k)
    boxes = {k: view.shapes[k].box for k in _content(view, slide)}
    out, told = [], set()
    for members in by_kind.values():
        for axis, kind in ((1, "row"), (0, "column")):
            for group in geometry.alignment_bands(boxes, members, axis):
                if len(group) < 2 or not geometry.laid_out_as(boxes, group, axis):
                    continue
                shared = geometry.shared_line({k: boxes[k][axis] for k in group})
                if shared is None or (shared[1] and len(group) > 2):
                    continue  # all on one line, or no line most members share
                line, pair = shared
                for k in group:
                    offset = boxes[k][axis] - line
                    if not cfg.peer_min_offset_px < abs(offset) <= cfg.peer_max_offset * (boxes[k][axis + 2] - boxes[k][axis]):
                        continue
                    where = ("down" if offset > 0 else "up") if axis == 1 else ("right" if offset > 0 else "left")
                    involved = tuple(group) if pair else (k,)
                    told.update(frozenset((k, other)) for other in group if other != k)
                    out.append(Finding("misalignment", min(1.0, 0.3 + abs(offset) / 30),
                                       geometry.union_box([boxes[i] for i in involved]),
                                       f"{view.shapes[k].name!r} sits {abs(offset):.0f}px {where} of the {kind} "
                                       f"of {len(group)} matching shapes it belongs to", involved))
    return out, told


def detect_misalignment(view: DeckView, slide: int, cfg: PptxDetectorConfig) -> list[Finding]:
    peers, told = detect_peer_misalignment(view, slide, cfg)
    content = _content(view, slide)
    out = []
    for n, a in enumerate(content):
        for b in content[n + 1:]:
            if frozenset((a, b)) in told:
                continue  # already told as a peer off its row or column
            ba, bb = view.shapes[a].box, view.shapes[b].box
            if geometry.intersection_area(ba, bb) > 0:
                continue
            x_overlap = min(ba[2], bb[2]) - max(ba[0], bb[0]) > 0
            y_overlap = min(ba[3], bb[3]) - max(ba[1], bb[1]) > 0
            if x_overlap == y_overlap:
                continue  # neither clearly stacked nor clearly in a row
            axis = 0 if x_overlap else 1
            offset = min(abs(bb[axis] - ba[axis]), abs(bb[axis + 2] - ba[axis + 2]),
                         abs((bb[axis] + bb[axis + 2]) - (ba[axis] + ba[axis + 2])) / 2)
            if cfg.align_min_offset_px < offset <= cfg.align_tolerance_px:
                edges = "left/centre/right" if axis == 0 else "top/middle/bottom"
                out.append(Finding("misalignment", min(1.0, 0.25 + offset / (4 * cfg.align_tolerance_px)),
                                   geometry.union_box([ba, bb]),
                                   f"{view.shapes[a].name!r} and {view.shapes[b].name!r} miss a shared "
                                   f"{edges} edge by {offset:.1f}px", (a, b)))
    return peers + out


def visual_items(view: DeckView, slide: int) -> list[VisualItem]:
    """AeSlides items for a pptx slide: text spans, pictures, and filled shapes' free area."""
    items = []
    for span in (s for s in view.spans if s.slide == slide):
        owner = span.shape if span.shape is not None else -1 - len(items)
        items.append(VisualItem(span.box, geometry.area(span.box), "text", owner))
    for k in _content(view, slide):
        shape = view.shapes[k]
        if shape.kind in ("picture", "chart", "table"):
            items.append(VisualItem(shape.box, geometry.area(shape.box), "image", k))
        elif shape.filled and not shape.text.strip():
            covered = sum(geometry.intersection_area(s.box, shape.box) for s in view.spans if s.slide == slide)
            free = geometry.area(shape.box) - covered
            if free > 0:
                items.append(VisualItem(shape.box, free, "background", k))
    return items


def detect_all(view: DeckView, slide: int, rgb: np.ndarray, cfg: PptxDetectorConfig) -> list[Finding]:
    return [*detect_overflow(view, slide, cfg), *detect_overlap(view, slide, cfg),
            *detect_low_contrast(view, slide, rgb), *detect_misalignment(view, slide, cfg)]
