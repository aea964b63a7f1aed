"""Design2Code fidelity metrics (Block-Match, Text, Position, Color, and a CLIP substitute).

Reimplemented from Design2Code (arXiv 2403.03163; NoviScl/Design2Code, metrics/visual_score.py and
ocr_free_utils.py), no benchmark code copied:

* Text blocks by colour injection, OCR-free: backgrounds made transparent, every element of the
  listed tags painted a unique palette colour (16 levels per channel, popped from the end), a
  second copy with every channel shifted by +50 mod 256; text pixels are where the two copies
  differ by exactly that shift; each text node takes its nearest coloured ancestor's colour.
  Difference from the original: the colours are injected into the live DOM of the already
  rendered page (inline `!important` styles, same cascade effect) instead of a BeautifulSoup
  round-trip, so one page load gives all three screenshots and the DOM judged is the browser's.
* Matching: difflib ratio costs, adjacent-block merges that raise the matched similarity by more
  than 0.05, Hungarian assignment with the context bonus (0.1, window 1), pairs under 0.5
  dropped. Ties between equally similar blocks are broken by centre distance (weight 1e-6), so
  repeated texts ("Read more") pair with their own copy; merge candidates whose two blocks are
  already matched at >= 0.95 are skipped (they cannot improve by 0.05).
* CLIP: the ViT-B/32 weights cannot be downloaded here. The substitute, `visual_ssim`, keeps
  Design2Code's preprocessing (text boxes inpainted, by the mean colour of each box's border
  instead of OpenCV Telea; square resize with LANCZOS) and scores the two 224x224 grayscale
  images with SSIM mapped to [0, 1]. It is NOT comparable with published CLIP numbers.

Never imports jax.
"""
from __future__ import annotations

import dataclasses
import difflib
import io
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage, optimize

from envs import color as wcolor

TEXT_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "div", "span", "a", "b", "li", "table", "td",
             "th", "button", "footer", "header", "figcaption")
LEVELS = tuple(range(10, 251, 16))
SHIFT = 50
METRICS = ("block_match", "text", "position", "color", "visual_ssim")

_INJECT_JS = """
([tags, levels, shift]) => {
  if (!window.__d2c) {
    const palette = [];
    for (const r of levels) for (const g of levels) for (const b of levels) palette.push([r, g, b]);
    const wanted = new Set(tags);
    const pool = palette.slice();
    const painted = [];
    for (const el of document.querySelectorAll('*')) {
      el.style.setProperty('background-color', 'rgba(255,255,255,0.0)', 'important');
      if (wanted.has(el.tagName.toLowerCase())) {
        if (!pool.length) pool.push(...palette);  // > 4096 elements: colours repeat
        painted.push([el, pool.pop()]);
      }
    }
    window.__d2c = painted;
  }
  const pairs = [];
  for (const [el, rgb] of window.__d2c) {
    const c = rgb.map((v) => (v + shift) % 256);
    el.style.setProperty('color', `rgb(${c[0]}, ${c[1]}, ${c[2]})`, 'important');
    el.style.setProperty('opacity', '1', 'important');
  }
  if (shift !== 0) return null;
  const colourOf = new Map(window.__d2c);
  const walk = (node, inherited) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        const text = child.data.trim();
        if (text && inherited) pairs.push([text, inherited]);
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const tag = child.tagName.toLowerCase();
        if (tag === 'script' || tag === 'style' || tag === 'noscript' || tag === 'template') continue;
        walk(child, colourOf.get(child) || inherited);
      }
    }
  };
  if (document.body) walk(document.body, colourOf.get(document.body) || null);
  return pairs;
}
"""


@dataclasses.dataclass
class Block:
    """A text block: lower-cased text, normalised bbox (x, y, w, h), mean colour of its pixels."""

    text: str
    bbox: tuple[float, float, float, float]
    color: tuple[float, float, float]

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]

    @property
    def centre(self) -> tuple[float, float]:
        return self.bbox[0] + self.bbox[2] / 2, self.bbox[1] + self.bbox[3] / 2


@dataclasses.dataclass
class PageCapture:
    """What the metrics need from one rendered page."""

    screenshot: np.ndarray  # H x W x 3 uint8, full page
    blocks: list[Block]


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def capture(page: Any, max_height: int = 8192) -> PageCapture:
    """Screenshot the open page as written, then with colours injected (twice); extract blocks.

    Leaves the page modified: call it after every other use of the page.
    """
    original = _png(page.screenshot(full_page=True, max_height=max_height))
    pairs = page.evaluate(_INJECT_JS, [list(TEXT_TAGS), list(LEVELS), 0])
    first = _png(page.screenshot(full_page=True, max_height=max_height))
    page.evaluate(_INJECT_JS, [list(TEXT_TAGS), list(LEVELS), SHIFT])
    second = _png(page.screenshot(full_page=True, max_height=max_height))
    return PageCapture(screenshot=original, blocks=blocks_from_screens(original, first, second, pairs))


def blocks_from_screens(original: np.ndarray, first: np.ndarray, second: np.ndarray,
                        pairs: list[tuple[str, list[int]]]) -> list[Block]:
    """Text pixels (copy 2 = copy 1 + 50 mod 256, +-8) grouped by injected colour (+-4)."""
    h = min(original.shape[0], first.shape[0], second.shape[0])
    w = min(original.shape[1], first.shape[1], second.shape[1])
    original, first, second = original[:h, :w], first[:h, :w].astype(np.int16), second[:h, :w].astype(np.int16)
    diff = np.abs(((first + SHIFT) % 256) - second)
    text_mask = np.all(np.minimum(diff, 256 - diff) <= 8, axis=-1)
    level = np.rint((first - LEVELS[0]) / 16.0)
    on_palette = (level >= 0) & (level < len(LEVELS)) & (np.abs(first - (LEVELS[0] + 16 * level)) <= 4)
    mask = text_mask & np.all(on_palette, axis=-1)
    ys, xs = np.nonzero(mask)
    lv = level[ys, xs].astype(np.int64)
    keys = lv[:, 0] * 256 + lv[:, 1] * 16 + lv[:, 2]
    found: dict[int, tuple[tuple[float, float, float, float], tuple[float, float, float]]] = {}
    if len(keys):
        order = np.argsort(keys, kind="stable")
        keys, ys, xs = keys[order], ys[order], xs[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        x0, x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
        y0, y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
        sums = np.add.reduceat(original[ys, xs].astype(np.float64), starts, axis=0)
        counts = np.diff(np.r_[starts, len(keys)])
        for k, key in enumerate(keys[starts]):
            bbox = (x0[k] / w, y0[k] / h, (x1[k] - x0[k]) / w, (y1[k] - y0[k]) / h)
            found[int(key)] = (bbox, tuple(sums[k] / counts[k]))
    blocks: list[Block] = []
    by_bbox: dict[tuple[float, ...], Block] = {}
    for text, rgb in pairs:
        key = sum(((c - LEVELS[0]) // 16) * m for c, m in zip(rgb, (256, 16, 1)))
        if key not in found:
            continue
        bbox, mean = found[key]
        if bbox in by_bbox:  # identical boxes merge: texts joined, colours averaged
            merged = by_bbox[bbox]
            merged.text = f"{merged.text} {text.lower()}"
            merged.color = tuple((a + b) / 2 for a, b in zip(merged.color, mean))
            continue
        block = Block(text=text.lower(), bbox=bbox, color=mean)
        by_bbox[bbox] = block
        blocks.append(block)
    return blocks


# ---- matching --------------------------------------------------------------------------------
def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _merge(a: Block, b: Block) -> Block:
    x0, y0 = min(a.bbox[0], b.bbox[0]), min(a.bbox[1], b.bbox[1])
    x1 = max(a.bbox[0] + a.bbox[2], b.bbox[0] + b.bbox[2])
    y1 = max(a.bbox[1] + a.bbox[3], b.bbox[1] + b.bbox[3])
    return Block(text=f"{a.text} {b.text}", bbox=(x0, y0, x1 - x0, y1 - y0),
                 color=tuple((p + q) / 2 for p, q in zip(a.color, b.color)))


def _tie_break(ref: list[Block], gen: list[Block]) -> np.ndarray:
    rc = np.array([b.centre for b in ref]).reshape(-1, 2)
    gc = np.array([b.centre for b in gen]).reshape(-1, 2)
    return 1e-6 * np.abs(rc[:, None, :] - gc[None, :, :]).max(-1)


def _context_adjusted(cost: np.ndarray, bonus: float = 0.1, window: int = 1) -> np.ndarray:
    """Design2Code's context bonus: a good cell (i, j) gains from the pairs that continue it,
    (i - k, j - k) and (i + k, j + k) for k <= window.

    Deviation, on purpose: Design2Code sums the best costs of the whole square window, so with
    repeated texts (a menu in both header and footer) a crossed pair can out-score the identity
    and a page scored against itself loses position/colour (3 of 378 Design2Code pages). Along
    the diagonal, the identity pairing is always optimal against itself."""
    adjusted = cost.copy()
    n, m = cost.shape
    for i, j in zip(*np.nonzero(cost < -0.5)):
        near = [cost[i + k, j + k] for k in range(-window, window + 1)
                if k and 0 <= i + k < n and 0 <= j + k < m]
        adjusted[i, j] += bonus * sum(near)
    return adjusted


def _assign(sim: np.ndarray, tie: np.ndarray) -> list[tuple[int, int]]:
    if sim.size == 0:
        return []
    rows, cols = optimize.linear_sum_assignment(_context_adjusted(-sim) + tie)
    return list(zip(rows.tolist(), cols.tolist()))


def _mean_gain(new: list[float], old: list[float]) -> float:
    """Mean of the similarities only the new matching has minus those only the old one has."""
    a, b = Counter(new), Counter(old)
    only_new, only_old = list((a - b).elements()), list((b - a).elements())
    mean_new = sum(only_new) / len(only_new) if only_new else 0.0
    mean_old = sum(only_old) / len(only_old) if only_old else 0.0
    if mean_new - mean_old > 0 and only_new and only_old and min(only_new) <= min(only_old):
        return 0.0
    return mean_new - mean_old


def _merge_pass(side: list[Block], other: list[Block], side_is_ref: bool) -> tuple[list[Block], bool]:
    """Try merging each adjacent pair on one side; apply the improving, non-overlapping ones."""
    if len(side) < 2 or not other:
        return side, False

    def matching(blocks: list[Block]) -> tuple[list[float], dict[int, float]]:
        sim = np.array([[_similarity(b.text, o.text) for o in other] for b in blocks])
        tie = _tie_break(blocks, other) if side_is_ref else _tie_break(other, blocks).T
        pairs = _assign(sim, tie)
        return [sim[i, j] for i, j in pairs], {i: sim[i, j] for i, j in pairs}

    base, matched = matching(side)
    candidates = []
    for i in range(len(side) - 1):
        if matched.get(i, 0.0) >= 0.95 and matched.get(i + 1, 0.0) >= 0.95:
            continue
        trial = side[:i] + [_merge(side[i], side[i + 1])] + side[i + 2:]
        gain = _mean_gain(matching(trial)[0], base)
        if gain > 0.05:
            candidates.append((gain, i))
    used: set[int] = set()
    chosen = []
    for _, i in sorted(candidates, reverse=True):
        if i not in used and i + 1 not in used:
            used.update((i, i + 1))
            chosen.append(i)
    if not chosen:
        return side, False
    merged, i = [], 0
    while i < len(side):
        if i in chosen:
            merged.append(_merge(side[i], side[i + 1]))
            i += 2
        else:
            merged.append(side[i])
            i += 1
    return merged, True


def match_blocks(ref: list[Block], gen: list[Block]) -> tuple[list[Block], list[Block], list[tuple[int, int]]]:
    """Merge adjacent blocks while it helps, then the final assignment without weak pairs."""
    changed = True
    while changed:
        ref, changed_ref = _merge_pass(ref, gen, side_is_ref=True)
        gen, changed_gen = _merge_pass(gen, ref, side_is_ref=False)
        changed = changed_ref or changed_gen
    if not ref or not gen:
        return ref, gen, []
    sim = np.array([[_similarity(r.text, g.text) for g in gen] for r in ref])
    pairs = [(i, j) for i, j in _assign(sim, _tie_break(ref, gen)) if sim[i, j] >= 0.5]
    return ref, gen, pairs


# ---- metrics ---------------------------------------------------------------------------------
def visual_ssim(ref_img: np.ndarray, gen_img: np.ndarray, ref_blocks: list[Block],
                gen_blocks: list[Block]) -> float:
    """CLIP substitute: SSIM of text-inpainted, square-resized 224x224 grayscale screenshots."""
    def prepare(img: np.ndarray, blocks: list[Block]) -> np.ndarray:
        img = img.astype(np.float64).copy()
        h, w = img.shape[:2]
        for b in blocks:
            x0, y0 = int(b.bbox[0] * w), int(b.bbox[1] * h)
            x1, y1 = int(np.ceil((b.bbox[0] + b.bbox[2]) * w)) + 1, int(np.ceil((b.bbox[1] + b.bbox[3]) * h)) + 1
            x0, y0, x1, y1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            region = img[y0:y1, x0:x1]
            border = np.concatenate([region[0], region[-1], region[:, 0], region[:, -1]])
            img[y0:y1, x0:x1] = border.mean(axis=0)
        side = min(h, w)
        square = Image.fromarray(img.astype(np.uint8)).resize((side, side), Image.LANCZOS)
        return np.asarray(square.resize((224, 224), Image.LANCZOS).convert("L"), dtype=np.float64)

    a, b = prepare(ref_img, ref_blocks), prepare(gen_img, gen_blocks)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = ndimage.uniform_filter(a, 7), ndimage.uniform_filter(b, 7)
    var_a = ndimage.uniform_filter(a * a, 7) - mu_a ** 2
    var_b = ndimage.uniform_filter(b * b, 7) - mu_b ** 2
    cov = ndimage.uniform_filter(a * b, 7) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(np.clip((ssim.mean() + 1) / 2, 0.0, 1.0))


def score(ref: PageCapture, gen: PageCapture) -> dict[str, float]:
    """All Design2Code metrics for one generated page against its reference, each in [0, 1]."""
    visual = visual_ssim(ref.screenshot, gen.screenshot, ref.blocks, gen.blocks)
    ref_blocks, gen_blocks, pairs = match_blocks(list(ref.blocks), list(gen.blocks))
    if not pairs:
        out = {m: 0.0 for m in METRICS}
        out["visual_ssim"] = visual
        out["final"] = 0.2 * visual
        return out
    matched_ref = {i for i, _ in pairs}
    matched_gen = {j for _, j in pairs}
    matched_area = sum(ref_blocks[i].area + gen_blocks[j].area for i, j in pairs)
    unmatched = (sum(b.area for k, b in enumerate(ref_blocks) if k not in matched_ref)
                 + sum(b.area for k, b in enumerate(gen_blocks) if k not in matched_gen))
    block_match = matched_area / (matched_area + unmatched) if matched_area + unmatched > 0 else 0.0
    text, position, colour = [], [], []
    for i, j in pairs:
        r, g = ref_blocks[i], gen_blocks[j]
        text.append(_similarity(r.text, g.text))
        position.append(1.0 - max(abs(r.centre[0] - g.centre[0]), abs(r.centre[1] - g.centre[1])))
        colour.append(max(0.0, 1.0 - wcolor.ciede2000(r.color, g.color) / 100.0))
    out = {"block_match": block_match, "text": float(np.mean(text)),
           "position": float(np.mean(position)), "color": float(np.mean(colour)),
           "visual_ssim": visual}
    out["final"] = 0.2 * sum(out[m] for m in METRICS)
    return out
