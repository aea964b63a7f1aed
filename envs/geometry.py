"""Pixel-box geometry shared by detectors, metrics and credit weighting.

A box is (x0, y0, x1, y1) in render pixels, origin top-left, x1 >= x0, y1 >= y0.
Pure Python on purpose: it runs in env workers and in the trainer's host code alike.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Box = tuple[float, float, float, float]


def area(box: Sequence[float]) -> float:
    """Area of a box; degenerate or inverted boxes have area 0."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Sequence[float], b: Sequence[float]) -> Box | None:
    """The overlapping box of a and b, or None when they do not overlap with positive area."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def intersection_area(a: Sequence[float], b: Sequence[float]) -> float:
    inter = intersection(a, b)
    return 0.0 if inter is None else area(inter)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union in [0, 1]; 0 when either box is empty."""
    inter = intersection_area(a, b)
    if inter == 0.0:
        return 0.0
    return inter / (area(a) + area(b) - inter)


def overlap_over_min(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the smaller area: 1 when one box contains the other (containment-aware)."""
    smaller = min(area(a), area(b))
    return 0.0 if smaller == 0.0 else intersection_area(a, b) / smaller


def fraction_outside(box: Sequence[float], canvas: Sequence[float]) -> float:
    """Share of box's area that lies outside canvas (0 inside, 1 fully outside)."""
    a = area(box)
    return 0.0 if a == 0.0 else 1.0 - intersection_area(box, canvas) / a


def union_box(boxes: Iterable[Sequence[float]]) -> Box | None:
    """Smallest box holding all given boxes, or None for no boxes."""
    boxes = list(boxes)
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def max_iou(box: Sequence[float], others: Iterable[Sequence[float]]) -> float:
    """Largest IoU of box with any of others (0 for none): how a region made of parts is scored."""
    return max((iou(box, o) for o in others), default=0.0)


# ---------------------------------------------------------------- convex polygons
# Rotated text is a rotated rectangle: comparing axis-aligned boxes of 45-degree tick labels
# reports overlaps where the glyphs do not touch, so overlap tests on text
# use these exact convex-polygon helpers. Points are (x, y) in render pixels.
Point = tuple[float, float]


def polygon_area(poly: Sequence[Point]) -> float:
    """Unsigned area of a simple polygon (shoelace formula)."""
    return abs(_signed_area(poly))


def _signed_area(poly: Sequence[Point]) -> float:
    n = len(poly)
    return 0.5 * sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1]
                     for i in range(n)) if n >= 3 else 0.0


def clip_convex(subject: Sequence[Point], clip: Sequence[Point]) -> list[Point]:
    """The part of convex polygon `subject` inside convex polygon `clip` (Sutherland-Hodgman);
    either orientation; empty when they do not overlap."""
    orientation = 1.0 if _signed_area(clip) >= 0 else -1.0
    output = list(subject)
    n = len(clip)
    for i in range(n):
        if not output:
            break
        (ax, ay), (bx, by) = clip[i], clip[(i + 1) % n]

        def side(p: Point) -> float:
            return orientation * ((bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax))

        current, output = output, []
        for j, p in enumerate(current):
            q = current[j - 1]
            sp, sq = side(p), side(q)
            if sp >= 0:
                if sq < 0:
                    output.append(_cross_point(q, p, sq, sp))
                output.append(p)
            elif sq >= 0:
                output.append(_cross_point(q, p, sq, sp))
    return output


def _cross_point(q: Point, p: Point, sq: float, sp: float) -> Point:
    t = sq / (sq - sp)
    return (q[0] + t * (p[0] - q[0]), q[1] + t * (p[1] - q[1]))


def convex_intersection_area(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Area shared by two convex polygons."""
    return polygon_area(clip_convex(a, b))


def box_corners(box: Sequence[float]) -> list[Point]:
    x0, y0, x1, y1 = box[:4]
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def rotated_rect(cx: float, cy: float, width: float, height: float, angle_deg: float) -> list[Point]:
    """Corners of a width x height rectangle centred at (cx, cy) and turned counter-clockwise by
    angle_deg as seen on screen (render y grows downwards)."""
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    corners = []
    for dx, dy in ((-width / 2, -height / 2), (width / 2, -height / 2),
                   (width / 2, height / 2), (-width / 2, height / 2)):
        corners.append((cx + dx * c - dy * s, cy - (dx * s + dy * c)))
    return corners


# -- rows and columns of repeated peers (misalignment as perceived, issue 15) ------------------

def alignment_bands(boxes: dict[int, Box], members: Iterable[int], axis: int,
                    same_size_px: float = 2.0) -> list[list[int]]:
    """Members grouped into bands along `axis` (1: rows, 0: columns) of one perpendicular size
    (within `same_size_px`), each member sharing more than half its extent with the band's first."""
    bands: list[list[int]] = []
    for i in sorted(members, key=lambda k: boxes[k][axis]):
        b = boxes[i]
        size = b[axis + 2] - b[axis]
        for band in bands:
            ref = boxes[band[0]]
            ref_size = ref[axis + 2] - ref[axis]
            shared = min(b[axis + 2], ref[axis + 2]) - max(b[axis], ref[axis])
            if abs(size - ref_size) <= same_size_px and shared > 0.5 * min(size, ref_size):
                band.append(i)
                break
        else:
            bands.append([i])
    return bands


def laid_out_as(boxes: dict[int, Box], group: Sequence[int], axis: int) -> bool:
    """Do the members read as a row (axis 1) or column (axis 0) of repeated peers? They sit
    side by side (a row) or one under another (a column), not stacked on one spot; and a pair
    looks alike (lengths along the line within a quarter), not two unrelated blocks that happen
    to share a width (a page's header and its article)."""
    along = 0 if axis == 1 else 1  # rows run along x, columns along y
    ordered = sorted((boxes[i] for i in group), key=lambda b: b[along])
    for a, b in zip(ordered, ordered[1:]):
        shared = min(a[along + 2], b[along + 2]) - max(a[along], b[along])
        if shared > 0.1 * min(a[along + 2] - a[along], b[along + 2] - b[along]):
            return False
    if len(group) == 2:
        lengths = [b[along + 2] - b[along] for b in ordered]
        return min(lengths) >= 0.75 * max(lengths)
    return True


def shared_line(edges: dict[int, float], cluster_px: float = 1.0) -> tuple[float, bool] | None:
    """The line most members of a group share, from their edges (clustered within `cluster_px`):
    (line, tie), where tie says the two largest clusters are the same size (the line is then the
    first cluster's); None when all members share one line."""
    ordered = sorted(edges, key=edges.get)
    clusters = [[ordered[0]]]
    for i in ordered[1:]:
        (clusters[-1].append(i) if edges[i] - edges[clusters[-1][-1]] <= cluster_px else clusters.append([i]))
    if len(clusters) == 1:
        return None
    sizes = sorted((len(c) for c in clusters), reverse=True)
    tie = sizes[0] == sizes[1]
    return (edges[clusters[0][0]] if tie else edges[max(clusters, key=len)[0]]), tie
