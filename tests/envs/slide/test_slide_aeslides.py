"""AeSlides measures on hand-made inputs where the answer is known."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from envs.slide import aeslides
from envs.slide.aeslides import VisualItem


def test_aspect_ratio_reward_is_one_on_target_and_punishes_tall_more_than_wide():
    assert aeslides.aspect_ratio_reward(1280, 720)[0] == pytest.approx(1.0)
    tall, _ = aeslides.aspect_ratio_reward(1280, 720 * 1.3)
    wide, _ = aeslides.aspect_ratio_reward(1280 * 1.3, 720)
    assert tall < wide < 1.0
    e = math.log(1.3)
    assert wide == pytest.approx(math.exp(-16 * e * e))


@settings(max_examples=50, deadline=None)
@given(st.floats(0.2, 5.0))
def test_aspect_ratio_reward_in_unit_interval(scale):
    reward, _ = aeslides.aspect_ratio_reward(1280, 720 * scale)
    assert 0.0 <= reward <= 1.0


def test_whitespace_blank_slide_has_no_content_and_busy_slide_is_full():
    blank = np.full((720, 1280, 3), 255, np.uint8)
    assert aeslides.content_ratio(blank) == 0.0
    rng = np.random.default_rng(0)
    busy = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    stripes = np.zeros_like(blank)
    stripes[:, ::40] = 255
    assert aeslides.content_ratio(np.maximum(busy, stripes)) > 0.95
    assert aeslides.whitespace_reward(0.5) == 0.0 and aeslides.whitespace_reward(1.0) == 1.0


def test_imbalance_centred_vs_off_centre():
    centred = [VisualItem((540, 260, 740, 460), 1.0, "text", 0)]
    off = [VisualItem((0, 260, 200, 460), 1.0, "text", 0)]
    assert aeslides.imbalance_score(centred, 1280, 720)[0] == pytest.approx(0.0)
    assert aeslides.imbalance_score(off, 1280, 720)[0] > 1.0


def test_collisions_skip_nested_and_backdrop_items():
    text_a = VisualItem((10, 10, 110, 30), 1, "text", 1)
    text_b = VisualItem((60, 15, 160, 35), 1, "text", 2)
    nested = VisualItem((20, 12, 40, 28), 1, "icon", 3, frozenset({1}))
    hero = VisualItem((0, 0, 1280, 400), 1, "image", 4)
    title = VisualItem((100, 100, 400, 150), 1, "text", 5)
    hits = aeslides.collisions([text_a, text_b, nested, hero, title])
    assert [(h.a, h.b) for h in hits] == [(1, 2)], "only the two unrelated texts collide"
