"""The four AeSlides verifiable measures: aspect ratio, whitespace, visual imbalance, collision.

Reimplemented from AeSlides (arXiv 2604.22840; ympan0508/aeslides), no code copied:

* aspect ratio: e = ln(AR / target); reward exp(-16 e^2 - 64 max(-e - 0.04, 0)^2), 0 error inside
  a flat band (default none). HTML slides: AR = 1280 / full content height measured at an
  initial viewport height of 10 px; pptx: the box holding the slide and every shape and text
  extent (content off the slide makes the deck "taller" or "wider" than its page).
* whitespace: grayscale, Gaussian blur 21x21, local std over a 201x151 window (reflect border),
  clip at 50 and /50, content where > 0.05; content ratio after cropping 15% top, 10% bottom,
  left and right; reward = smoothstep from 0.8 to 0.995 of that ratio (the input is our reading
  of the recipe, which does not show it).
* visual imbalance: weighted centroid of visual items (text by area, long text by line rects,
  images, icons at half weight, atomic elements, background residuals); score =
  sqrt((|dx|/0.0075)^2 + (|dy|/0.145)^2), imbalanced above 1; reward = 1 / (1 + score).
* collision (not released by AeSlides; "in spirit"): leaf items (text lines, images, icons,
  controls) of unrelated elements intersecting; reports the count and the worst intersection
  over the smaller area; reward = 1 / (1 + count).

Works on plain boxes so the HTML-slide and pptx environments share it. Never imports jax.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from envs import geometry

Box = tuple[float, float, float, float]
MEASURES = ("aspect_ratio", "whitespace", "imbalance", "collision")


@dataclasses.dataclass(frozen=True)
class VisualItem:
    """A weighted box for the centroid and a leaf for collisions; `group` ties related items."""

    box: Box
    weight: float
    kind: str  # text | image | icon | atomic | background
    owner: int  # element / shape index: items of the same owner never collide
    lineage: frozenset = frozenset()  # owners this item is nested in (never collide with them)


def aspect_ratio_reward(width: float, height: float, target: float = 16 / 9, alpha: float = 16.0,
                        beta: float = 64.0, margin: float = 0.04, band: float = 0.0) -> tuple[float, float]:
    """(reward, e) for a content box of width x height; too tall is punished far more than too wide."""
    e = math.log(max(width, 1e-9) / max(height, 1e-9) / target)
    if abs(e) <= band:
        e = 0.0
    return math.exp(-alpha * e * e - beta * max(-e - margin, 0.0) ** 2), e


def _smoothstep(x: float, lo: float, hi: float) -> float:
    t = min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return t * t * (3 - 2 * t)


def content_ratio(rgb: np.ndarray) -> float:
    """Share of the (cropped) canvas carrying visual content, by local contrast."""
    gray = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    blurred = ndimage.gaussian_filter(gray, sigma=3.5, truncate=10 / 3.5, mode="reflect")
    mean = ndimage.uniform_filter(blurred, size=(151, 201), mode="reflect")
    mean_sq = ndimage.uniform_filter(blurred * blurred, size=(151, 201), mode="reflect")
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    content = np.clip(std, 0, 50) / 50 > 0.05
    h, w = content.shape
    crop = content[int(0.15 * h):h - int(0.10 * h), int(0.10 * w):w - int(0.10 * w)]
    return float(crop.mean()) if crop.size else 0.0


def whitespace_reward(ratio: float) -> float:
    return _smoothstep(ratio, 0.8, 0.995)


def imbalance_score(items: Sequence[VisualItem], width: float, height: float) -> tuple[float, tuple[float, float]]:
    """(score, weighted centroid); score > 1 means visually imbalanced."""
    total = sum(i.weight for i in items)
    if total <= 0:
        return 0.0, (width / 2, height / 2)
    cx = sum(i.weight * (i.box[0] + i.box[2]) / 2 for i in items) / total
    cy = sum(i.weight * (i.box[1] + i.box[3]) / 2 for i in items) / total
    dx, dy = (cx - width / 2) / width, (cy - height / 2) / height
    return math.hypot(abs(dx) / 0.0075, abs(dy) / 0.145), (cx, cy)


@dataclasses.dataclass(frozen=True)
class Collision:
    a: int
    b: int
    region: Box
    fraction: float  # intersection over the smaller item


def collisions(items: Sequence[VisualItem], min_fraction: float = 0.05) -> list[Collision]:
    """Pairs of leaf items from unrelated owners whose boxes intersect (one hit per owner pair).

    A picture that holds the other item is its backdrop (title over a hero image), not a hit.
    """
    leaves = sorted((i for i in items if i.kind != "background"), key=lambda i: i.box[1])
    found: dict[tuple[int, int], Collision] = {}
    active: list[VisualItem] = []
    for item in leaves:
        active = [a for a in active if a.box[3] > item.box[1]]
        for other in active:
            key = (min(item.owner, other.owner), max(item.owner, other.owner))
            if (item.owner == other.owner or key in found or other.owner in item.lineage
                    or item.owner in other.lineage):
                continue
            frac = geometry.overlap_over_min(item.box, other.box)
            if frac > min_fraction and not _is_backdrop(item, other) and not _is_backdrop(other, item):
                found[key] = Collision(key[0], key[1], geometry.intersection(item.box, other.box), frac)
        active.append(item)
    return list(found.values())


def _is_backdrop(under: VisualItem, over: VisualItem) -> bool:
    """An image holding (>= 90% of) another item is that item's background, not a collision."""
    inside = geometry.intersection_area(under.box, over.box) / max(geometry.area(over.box), 1e-9)
    return under.kind == "image" and geometry.area(under.box) > geometry.area(over.box) and inside >= 0.9


def measures(rgb: np.ndarray, items: Sequence[VisualItem], canvas: tuple[float, float],
             content_size: tuple[float, float]) -> dict[str, float]:
    """All four measures (raw values and rewards) for one slide."""
    width, height = canvas
    ar_reward, ar_error = aspect_ratio_reward(content_size[0], content_size[1], target=width / height)
    ratio = content_ratio(rgb)
    score, _ = imbalance_score(items, width, height)
    hits = collisions(items)
    out = {
        "aspect_ratio": content_size[0] / max(content_size[1], 1e-9), "aspect_ratio_error": ar_error,
        "aspect_ratio_reward": ar_reward,
        "whitespace": 1.0 - ratio, "whitespace_reward": whitespace_reward(ratio),
        "imbalance": score, "imbalance_reward": 1.0 / (1.0 + score),
        "collision_count": float(len(hits)),
        "collision_max_fraction": max((h.fraction for h in hits), default=0.0),
        "collision_reward": 1.0 / (1.0 + len(hits)),
    }
    out["aeslides_avg"] = sum(out[f"{m}_reward"] for m in MEASURES) / len(MEASURES)
    return out
