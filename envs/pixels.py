"""What the judge reads from a render's pixels, the same for every domain.

Renders come from processes that ran model code (or from renderers fed model code), so the judge
decodes them itself (`decode_png`, size-capped) and checks claims against them: where there is
ink (pixels that differ from the render's dominant colour), whether a box shows any, how much
of the ink a set of boxes accounts for, and how much a render looks like a target
(`similarity`: correlation of blurred grey levels, so a blank, uniformly covered or unrelated
render scores near 0 and the target itself 1). Never imports jax.
"""
from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import numpy as np

INK_TOLERANCE = 24  # max channel difference from the background still counted as background
SIMILARITY_SIZE = (96, 72)  # (width, height) the renders are reduced to before comparing
GLYPH_SHARE_MAX = 0.5  # more of a text's box in its colour than glyphs ever cover (`behind_text`)


class RenderError(ValueError):
    """The render is not a readable image within the pixel budget."""


def decode_png(data: bytes | None, max_pixels: int) -> np.ndarray:
    """(height, width, 3) uint8 pixels of a PNG; RenderError when it is not one, or too large."""
    from PIL import Image
    if not data:
        raise RenderError("there is no render")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise RenderError(f"the render is {image.format}, not PNG")
            if image.width * image.height > max_pixels:
                raise RenderError(f"the render has {image.width}x{image.height} pixels, over "
                                  f"{max_pixels}")
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise RenderError(f"the render is not a readable PNG ({err})") from None


def background_color(image: np.ndarray) -> np.ndarray:
    """The most frequent colour (on a sample of at most ~64k pixels)."""
    flat = image.reshape(-1, 3)
    step = max(1, len(flat) // 65536)
    packed = flat[::step].astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    values, counts = np.unique(packed, return_counts=True)
    top = int(values[np.argmax(counts)])
    return np.array([(top >> 16) & 255, (top >> 8) & 255, top & 255], dtype=np.int16)


def ink_mask(image: np.ndarray) -> np.ndarray:
    """(height, width) bool: pixels visibly different from the background colour."""
    levels = np.arange(256, dtype=np.int16)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for channel, value in enumerate(background_color(image)):
        far = np.abs(levels - value) > INK_TOLERANCE  # a lookup table: faster than arithmetic
        mask |= far[image[..., channel]]
    return mask


def _pixel_box(box: Sequence[float], shape: tuple[int, ...],
               pad: float = 0.0) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(map(math.isfinite, (x0, y0, x1, y1))):
        return 0, 0, 0, 0
    return (min(max(math.floor(x0 - pad), 0), width), min(max(math.floor(y0 - pad), 0), height),
            min(max(math.ceil(x1 + pad), 0), width), min(max(math.ceil(y1 + pad), 0), height))


def shows_ink(mask: np.ndarray, box: Sequence[float], pad: float = 1.0) -> bool:
    """Whether any ink lies in the box (padded by `pad` pixels, clipped to the image)."""
    x0, y0, x1, y1 = _pixel_box(box, mask.shape, pad)
    return x1 > x0 and y1 > y0 and bool(mask[y0:y1, x0:x1].any())


def explained_share(mask: np.ndarray, boxes: Iterable[Sequence[float]], pad: float = 4.0) -> float:
    """Share of the ink inside the union of the boxes (1.0 when there is no ink at all)."""
    total = int(mask.sum())
    if total == 0:
        return 1.0
    covered = np.zeros_like(mask)
    for box in boxes:
        x0, y0, x1, y1 = _pixel_box(box, mask.shape, pad)
        covered[y0:y1, x0:x1] = True
    return float((mask & covered).sum()) / total


def _grey_thumbnail(image: np.ndarray) -> np.ndarray:
    from PIL import Image
    grey = Image.fromarray(np.ascontiguousarray(image)).convert("L")
    return np.asarray(grey.resize(SIMILARITY_SIZE, Image.BOX), dtype=np.float64)


def similarity(render: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation of the two renders' blurred grey levels, clipped to [0, 1]; 0 when
    either is (nearly) uniform, unless both are the same uniform image."""
    thumb_a, thumb_b = _grey_thumbnail(render), _grey_thumbnail(target)
    a, b = thumb_a - thumb_a.mean(), thumb_b - thumb_b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if norm < 1e-6:
        return 1.0 if np.allclose(thumb_a, thumb_b) else 0.0
    return float(np.clip((a * b).sum() / norm, 0.0, 1.0))


def behind_text(image: np.ndarray, box: Sequence[float], ink: Sequence[float]) -> tuple[float, ...] | None:
    """Median colour of the pixels under a text's box that are not its ink: what the glyphs are
    read against, whatever painted it (gradient, photo, a box laid behind). Glyphs cover well
    under half of their box (at most 27%, 21% at the 99th percentile, of 707 chart texts), so
    when more than `GLYPH_SHARE_MAX` of the box looks like the text's colour, the text is drawn
    in its surround's colour, and what is left in the box are other things drawn across it (a
    legend's entries and handles over a title), not what the glyphs are read against: then the
    3-px ring around the box, what a reader sees around the glyphs. None when the box lies
    outside the image."""
    h, w = image.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    ink = np.asarray(ink, dtype=float)[:3]
    patch = image[y0:y1, x0:x1].reshape(-1, 3).astype(float)
    not_ink = patch[np.abs(patch - ink).max(axis=1) > 40]
    if len(not_ink) < (1.0 - GLYPH_SHARE_MAX) * len(patch):
        ring = np.concatenate([
            image[max(0, y0 - 3):y0, x0:x1].reshape(-1, 3), image[y1:min(h, y1 + 3), x0:x1].reshape(-1, 3),
            image[y0:y1, max(0, x0 - 3):x0].reshape(-1, 3), image[y0:y1, x1:min(w, x1 + 3)].reshape(-1, 3)])
        not_ink = ring.astype(float) if len(ring) else patch
    return tuple(float(v) for v in np.median(not_ink, axis=0))


def visibly_changed(a: np.ndarray, b: np.ndarray, min_pixels: int = 20) -> bool:
    """Do two renders differ where an eye would notice: another size, or at least `min_pixels`
    pixels whose colour moved by more than the ink tolerance (an edit that changed nothing on
    screen is no injected defect)."""
    if a.shape != b.shape:
        return True
    moved = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > INK_TOLERANCE
    return int(moved.sum()) >= min_pixels
