"""Pixel-box geometry shared by detectors, metrics and credit weighting.

A box is (x0, y0, x1, y1) in render pixels, origin top-left, x1 >= x0, y1 >= y0.
Pure Python on purpose: it runs in env workers and in the trainer's host code alike.
"""
from __future__ import annotations

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
