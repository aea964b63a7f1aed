"""Design2Code's CLIP score: text masking by inpainting, the square squash, and the similarity,
which equals transformers' own CLIPModel similarity of the same prepared images (tiny random
CLIP saved by the test; torch is test-only)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from sdpo_jax import clip_score

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "models"))
from clip_tiny import save_tiny_clip  # noqa: E402


def _page(seed: int, height: int = 90, width: int = 140) -> np.ndarray:
    """A pale page with coloured panels and dark 'text' stripes."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 235, np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, height - 20), rng.integers(0, width - 30)
        page[y:y + 20, x:x + 30] = rng.integers(0, 256, 3)
    page[10:16, 20:90] = 20
    return page


def test_text_boxes_are_inpainted_from_their_surroundings():
    page = np.full((60, 100, 3), 240, np.uint8)
    page[20:30, 10:60] = 0  # a black "line of text"
    box = (10 / 100, 20 / 60, 50 / 100, 10 / 60)
    masked = clip_score.mask_text(page, [box])
    assert masked[20:30, 10:60].min() > 200, "the text box should take the page colour"
    assert np.array_equal(masked[:18], page[:18]), "pixels away from the box must not change"
    assert np.array_equal(clip_score.mask_text(page, []), page)


def test_pages_are_squashed_not_cropped():
    page = np.zeros((50, 120, 3), np.uint8)
    page[:, 100:] = 255  # a white band at the right edge survives a squash, not a centre crop
    square = np.asarray(clip_score.squash_to_square(page))
    assert square.shape == (50, 50, 3) and square[:, -3:].mean() > 200


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny_clip"))
    reference, processor = save_tiny_clip(folder)
    return clip_score.ClipScorer.from_folder(folder), reference, processor


def test_page_similarity_equals_transformers_clip_similarity(tiny_scorer):
    scorer, reference, processor = tiny_scorer
    ref, gen = _page(0), _page(1, height=110, width=100)
    ref_boxes, gen_boxes = [(20 / 140, 10 / 90, 70 / 140, 6 / 90)], []
    prepared = [clip_score.squash_to_square(clip_score.mask_text(ref, ref_boxes)),
                clip_score.squash_to_square(clip_score.mask_text(gen, gen_boxes))]
    with torch.no_grad():
        embeds = reference(pixel_values=processor(images=prepared, return_tensors="pt")[
            "pixel_values"], input_ids=torch.zeros((1, 2), dtype=torch.long)).image_embeds
    expected = float(embeds[0] @ embeds[1])
    got = scorer.page_similarity(ref, gen, ref_boxes, gen_boxes)
    assert got == pytest.approx(expected, abs=1e-5)
    assert scorer.page_similarity(ref, ref, ref_boxes, ref_boxes) == pytest.approx(1.0, abs=1e-5)
    assert abs(got - 1.0) > 1e-3, "different pages should not score as identical"


def test_similarity_is_symmetric_and_bounded(tiny_scorer):
    scorer = tiny_scorer[0]
    a, b = Image.fromarray(_page(2)), Image.fromarray(_page(3))
    ab, ba = scorer.similarity(a, b), scorer.similarity(b, a)
    assert ab == pytest.approx(ba, abs=1e-6) and -1.0 <= ab <= 1.0
