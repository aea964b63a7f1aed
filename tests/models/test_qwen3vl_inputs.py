"""Host-side inputs against transformers: MRoPE positions (get_rope_index) on random layouts of
text, images and multi-frame videos with left padding, and the vision tower's per-patch position
table taps, rotary (row, col) and frame segments for random grids; plus the input errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qwen3vl_tiny as tiny
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.vision_inputs import PAD_SEGMENT, prepare_vision_inputs

torch = pytest.importorskip("torch")
from transformers import vision_utils  # noqa: E402  (after the torch skip)

CONFIG = tiny.tiny_config()
EVEN = st.sampled_from([2, 4, 6, 8])
SEGMENT = st.one_of(
    st.tuples(st.just("text"), st.integers(1, 5)),
    st.tuples(st.just("image"), st.tuples(st.just(1), EVEN, EVEN)),
    st.tuples(st.just("video"), st.tuples(st.integers(1, 3), EVEN, EVEN)))
ROW = st.tuples(st.integers(0, 4), st.lists(SEGMENT, min_size=1, max_size=5))


def _layout(rows):
    """input_ids, attention_mask, image grids, video grids for rows of (left pad, segments)."""
    c = CONFIG
    merge = c.vision.merge_unit
    built, images, videos = [], [], []
    for pad, segments in rows:
        ids = [0] * pad
        for kind, arg in segments:
            if kind == "text":
                ids += [5] * arg
            elif kind == "image":
                images.append(arg)
                ids += [c.vision_start_token_id] + [c.image_token_id] * (arg[1] * arg[2] // merge) \
                    + [c.vision_end_token_id]
            else:
                videos.append(arg)
                for _ in range(arg[0]):  # a timestamp token, then the frame's placeholders
                    ids += [7, c.vision_start_token_id] + \
                        [c.video_token_id] * (arg[1] * arg[2] // merge) + [c.vision_end_token_id]
        built.append((pad, ids))
    length = max(len(ids) for _, ids in built)
    input_ids = np.zeros((len(built), length), np.int64)
    mask = np.zeros((len(built), length), np.int64)
    for b, (pad, ids) in enumerate(built):
        shift = length - len(ids)  # left padding
        input_ids[b, shift:] = ids
        mask[b, shift + pad:] = 1
    grid = lambda g: np.array(g, np.int64).reshape(-1, 3) if g else None  # noqa: E731
    return input_ids, mask, grid(images), grid(videos)


@settings(max_examples=40, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=3))
def test_rope_index_equals_transformers_on_random_layouts(rows):
    hf, _ = tiny.hf_tiny_model()
    ids, mask, images, videos = _layout(rows)
    types = np.where(ids == CONFIG.image_token_id, 1,
                     np.where(ids == CONFIG.video_token_id, 2, 0)).astype(np.int32)
    as_torch = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    theirs, their_deltas = hf.model.get_rope_index(
        torch.from_numpy(ids), torch.from_numpy(types), as_torch(images),
        as_torch(None if videos is None else videos.copy()), torch.from_numpy(mask))
    ours, deltas = rope_index(ids, CONFIG, image_grid_thw=images, video_grid_thw=videos,
                              attention_mask=mask)
    np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(deltas, their_deltas.numpy().ravel())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), EVEN, EVEN), min_size=1, max_size=4),
       st.integers(0, 3), st.integers(0, 2))
def test_vision_metadata_equals_transformers(grids, extra_blocks, extra_slots):
    """Each image gets its own padded slot; its real patches, read slot by slot, are HF's packed
    rows, and its frames are HF's attention segments."""
    v = CONFIG.vision
    grid = np.array(grids, np.int64)
    n = int(grid.prod(axis=1).sum())
    pixels = np.zeros((n, v.patch_dim), np.float32)
    slot_patches = int(grid.prod(axis=1).max()) + extra_blocks * v.merge_unit
    ours = prepare_vision_inputs(v, pixel_values=pixels, image_grid_thw=grid,
                                 slots=len(grid) + extra_slots, slot_patches=slot_patches)
    real = ours.segment_ids != PAD_SEGMENT
    tg = torch.from_numpy(grid)
    indices, weights = vision_utils.get_vision_interpolation_indices_and_weights(
        tg, num_grid_per_side=v.grid_side, mode="bilinear", align_corners=True,
        spatial_merge_size=v.spatial_merge_size)
    np.testing.assert_array_equal(ours.pos_indices[real], indices.numpy())
    np.testing.assert_array_equal(ours.pos_weights[real], weights.numpy())
    np.testing.assert_array_equal(
        ours.rowcol[real], vision_utils.get_vision_position_ids(tg, v.spatial_merge_size).numpy())
    bounds = vision_utils.get_vision_cu_seqlens(tg).numpy()
    segments = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    slot_of_patch = np.broadcast_to(np.arange(len(grid) + extra_slots)[:, None], real.shape)[real]
    ours_segments = ours.segment_ids[real] + np.cumsum([0, *grid[:, 0]])[slot_of_patch]
    np.testing.assert_array_equal(ours_segments, segments)
    assert (ours.pos_weights[~real] == 0).all()
    assert ours.pixel_values.shape[:2] == (len(grid) + extra_slots, slot_patches)
    per_slot = slot_patches // v.merge_unit
    expected_rows = np.concatenate([s * per_slot + np.arange(int(np.prod(g)) // v.merge_unit)
                                    for s, g in enumerate(grids)])
    np.testing.assert_array_equal(ours.token_rows, expected_rows)


def test_run_that_does_not_fit_its_grid_is_an_error():
    ids, mask, images, _ = _layout([(0, [("text", 2), ("image", (1, 4, 4)), ("text", 1)])])
    with pytest.raises(ValueError, match="does not match its grid"):
        rope_index(ids, CONFIG, image_grid_thw=np.array([[1, 4, 6]]), attention_mask=mask)
    with pytest.raises(ValueError, match="more image grids were given"):
        rope_index(ids, CONFIG, image_grid_thw=np.concatenate([images, images]),
                   attention_mask=mask)
    with pytest.raises(ValueError, match="more image token runs"):
        rope_index(ids, CONFIG, attention_mask=mask)


def test_vision_input_errors_name_the_problem():
    v = CONFIG.vision
    grid = np.array([[1, 4, 4]])
    with pytest.raises(ValueError, match=r"must have shape \(16, 1536\)"):
        prepare_vision_inputs(v, pixel_values=np.zeros((15, v.patch_dim)), image_grid_thw=grid)
    with pytest.raises(ValueError, match="multiples of spatial_merge_size"):
        prepare_vision_inputs(v, pixel_values=np.zeros((15, v.patch_dim)),
                              image_grid_thw=np.array([[1, 3, 5]]))
    with pytest.raises(ValueError, match="slot_patches=18"):
        prepare_vision_inputs(v, pixel_values=np.zeros((16, v.patch_dim)), image_grid_thw=grid,
                              slot_patches=18)
    with pytest.raises(ValueError, match="slot_patches=12"):
        prepare_vision_inputs(v, pixel_values=np.zeros((16, v.patch_dim)), image_grid_thw=grid,
                              slot_patches=12)
    with pytest.raises(ValueError, match="must name the 1 given"):
        prepare_vision_inputs(v, pixel_values=np.zeros((16, v.patch_dim)), image_grid_thw=grid,
                              token_slots=[0, 1])
