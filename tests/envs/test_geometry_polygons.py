"""Convex-polygon helpers used for rotated text: exact on boxes, symmetric, bounded."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from envs.geometry import (box_corners, convex_intersection_area, intersection_area, polygon_area,
                           rotated_rect)

coord = st.floats(min_value=-500, max_value=500, allow_nan=False)
size = st.floats(min_value=0.5, max_value=300, allow_nan=False)
angle = st.floats(min_value=-180, max_value=180, allow_nan=False)


@st.composite
def boxes(draw):
    x, y, w, h = draw(coord), draw(coord), draw(size), draw(size)
    return (x, y, x + w, y + h)


@settings(max_examples=200, deadline=None)
@given(boxes(), boxes())
def test_on_axis_aligned_boxes_it_equals_the_box_intersection(a, b):
    exact = intersection_area(a, b)
    assert math.isclose(convex_intersection_area(box_corners(a), box_corners(b)), exact,
                        rel_tol=1e-6, abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(coord, coord, size, size, angle, coord, coord, size, size, angle)
def test_rotated_rectangles_symmetric_and_bounded(x1, y1, w1, h1, a1, x2, y2, w2, h2, a2):
    p, q = rotated_rect(x1, y1, w1, h1, a1), rotated_rect(x2, y2, w2, h2, a2)
    assert math.isclose(polygon_area(p), w1 * h1, rel_tol=1e-6)
    pq, qp = convex_intersection_area(p, q), convex_intersection_area(q, p)
    assert math.isclose(pq, qp, rel_tol=1e-6, abs_tol=1e-6)
    assert -1e-6 <= pq <= min(w1 * h1, w2 * h2) * (1 + 1e-6)


def test_forty_five_degree_labels_side_by_side_do_not_overlap():
    a, b = rotated_rect(100, 100, 60, 10, 45), rotated_rect(115, 100, 60, 10, 45)
    assert convex_intersection_area(a, b) < 1e-6
    assert intersection_area(*[(min(x for x, _ in p), min(y for _, y in p), max(x for x, _ in p),
                                max(y for _, y in p)) for p in (a, b)]) > 500
