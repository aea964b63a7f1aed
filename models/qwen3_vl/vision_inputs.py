"""Host-side (numpy) preparation of image/video patches for the vision tower, as a batch of slots.

Each distinct image (or video) gets one **slot**: its patch rows (2x2 spatial-merge-block order,
each row C*T*P*P long, like HF's processor output) padded to a common slot length. The tower
encodes the slots as a batch, attending only within each frame of each slot, so its memory and
FLOPs grow linearly with the number of images (a packed sequence with a block mask grows with
the square of all patches) and the slots shard over the batch axes of the mesh. Everything that
depends on the data-dependent grid sizes is computed here, so the device program has static
shapes: bilinear (align-corners) taps into the learned position table, each patch's (row, col)
for the 2D rotary, a frame id per patch (PAD_SEGMENT on padding), and `token_rows`, which of the
merged feature rows each visual token of the text takes. `token_rows` is how rows share an
image: the G rollouts of a prompt list the prompt image's slot G times (encoded once, gathered
per row). Pixels are stored in the dtype the caller asks for (the model's compute dtype: half
the bytes of float32 on TPU configs). This module never touches jax devices beyond building the
pytree container and naming its shardings.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding

from models.qwen3_vl.config import VisionConfig
from models.sharding import Rules, logical_to_spec

PAD_SEGMENT = -1


@struct.dataclass
class VisionInputs:
    """Slots of patches plus their host-computed metadata; every array has a static shape.

    pixel_values [S, P, C*T*P*P]; pos_indices, pos_weights [S, P, 4] (position-table taps);
    rowcol [S, P, 2] int32; segment_ids [S, P] int32 (frame within the slot, PAD_SEGMENT on
    padding); token_rows [K] int32: the merged feature row (of the [S * P / merge_unit] the
    tower returns, slot-major) taken by the k-th visual token of the text, counting image
    tokens then video tokens row-major over the batch (entries past the real ones are 0);
    num_image_tokens: int32 scalar, entries of token_rows that belong to images.
    """
    pixel_values: jax.Array
    pos_indices: jax.Array
    pos_weights: jax.Array
    rowcol: jax.Array
    segment_ids: jax.Array
    token_rows: jax.Array
    num_image_tokens: jax.Array

    @property
    def num_patches(self) -> int:
        """Patch capacity of all slots (0: no images)."""
        return self.pixel_values.shape[0] * self.pixel_values.shape[1]


# Logical axes of each field: slots over the batch axes of the mesh, the gather table and the
# scalar replicated.
VISION_AXES = dict(pixel_values=("act_images", "act_patches", None),
                   pos_indices=("act_images", "act_patches", None),
                   pos_weights=("act_images", "act_patches", None),
                   rowcol=("act_images", "act_patches", None),
                   segment_ids=("act_images", "act_patches"),
                   token_rows=(None,), num_image_tokens=())


def abstract_vision_inputs(config: VisionConfig, slots: int, slot_patches: int, tokens: int,
                           dtype: np.dtype) -> VisionInputs:
    """The ShapeDtypeStructs of `prepare_vision_inputs(..., slots, slot_patches, tokens=tokens,
    dtype=dtype)` (ahead-of-time compilation: nothing is allocated)."""
    spec = jax.ShapeDtypeStruct
    shape = (slots, slot_patches)
    return VisionInputs(
        pixel_values=spec((*shape, config.patch_dim), dtype),
        pos_indices=spec((*shape, 4), np.int32), pos_weights=spec((*shape, 4), np.float32),
        rowcol=spec((*shape, 2), np.int32), segment_ids=spec(shape, np.int32),
        token_rows=spec((tokens,), np.int32), num_image_tokens=spec((), np.int32))


def vision_shardings(vision: VisionInputs, mesh: Mesh, rules: Rules) -> VisionInputs:
    """NamedShardings of every field on `mesh` (for arrays or ShapeDtypeStructs)."""
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    return VisionInputs(**{
        name: NamedSharding(mesh, logical_to_spec(axes, rules, sizes,
                                                  getattr(vision, name).shape))
        for name, axes in VISION_AXES.items()})


def _check_grids(grid_thw: np.ndarray | None, name: str, merge: int) -> np.ndarray:
    if grid_thw is None:
        return np.zeros((0, 3), np.int64)
    grid = np.asarray(grid_thw)
    if grid.ndim != 2 or grid.shape[1] != 3 or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError(f"{name} must be an int array of shape [num, 3] (t, h, w in patches), "
                         f"got shape {grid.shape} dtype {grid.dtype}.")
    if (grid <= 0).any() or (grid[:, 1:] % merge).any():
        raise ValueError(f"{name}={grid.tolist()}: every t, h, w must be positive and h, w "
                         f"multiples of spatial_merge_size={merge}. Fix: resize the image with "
                         f"the processor (smart_resize).")
    return grid.astype(np.int64)


def _frame_rowcol(h: int, w: int, merge: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each patch of an h x w frame, listed in merge-block order."""
    within = np.arange(h * w)
    blocks_w = w // merge
    in_col = within % merge
    in_row = (within // merge) % merge
    block_col = (within // (merge * merge)) % blocks_w
    block_row = within // (merge * merge * blocks_w)
    return block_row * merge + in_row, block_col * merge + in_col


def _axis_taps(index: np.ndarray, size: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Align-corners linear taps and weights of `index` (of `size`) into `side` table cells."""
    src = index.astype(np.float32) * np.float32(side - 1) / np.float32(max(size - 1, 1))
    floor = np.floor(src)
    offsets = np.arange(2, dtype=np.float32)
    taps = np.clip(floor.astype(np.int64)[:, None] + np.arange(2), 0, side - 1)
    distance = np.abs(src[:, None] - floor[:, None] - offsets)
    return taps, np.maximum(np.float32(1) - distance, np.float32(0))


def _position_table_taps(rows: np.ndarray, cols: np.ndarray, h: int, w: int, side: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    row_taps, row_w = _axis_taps(rows, h, side)
    col_taps, col_w = _axis_taps(cols, w, side)
    indices = (row_taps[:, :, None] * side + col_taps[:, None, :]).reshape(-1, 4)
    weights = (row_w[:, :, None] * col_w[:, None, :]).reshape(-1, 4)
    return indices, weights


def prepare_vision_inputs(config: VisionConfig, *, pixel_values: np.ndarray | None = None,
                          image_grid_thw: np.ndarray | None = None,
                          pixel_values_videos: np.ndarray | None = None,
                          video_grid_thw: np.ndarray | None = None,
                          slots: int | None = None, slot_patches: int | None = None,
                          token_slots: Sequence[int] | None = None, tokens: int | None = None,
                          dtype: np.dtype = np.float32) -> VisionInputs:
    """One slot per image, then per video (in the order given), and their metadata.

    slots / slot_patches: the static slot count and patches per slot (default: just enough).
    token_slots: the slots whose tokens the text takes, in its order (default: every slot once,
    like HF); a slot may appear many times (rows sharing an image). Image slots must come
    before video slots in it. tokens: the static length of `token_rows` (default: just enough).
    """
    merge = config.spatial_merge_size
    items = []  # (pixels, (t, h, w), is_image)
    for pixels, grid, name in ((pixel_values, image_grid_thw, "image_grid_thw"),
                               (pixel_values_videos, video_grid_thw, "video_grid_thw")):
        grid = _check_grids(grid, name, merge)
        rows = int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum())
        if (pixels is None) != (len(grid) == 0):
            raise ValueError(f"{name} and its pixel values must be given together.")
        pixels = np.zeros((0, config.patch_dim), dtype) if pixels is None else np.asarray(pixels)
        if pixels.shape != (rows, config.patch_dim):
            raise ValueError(f"pixel rows for {name}={grid.tolist()} must have shape "
                             f"({rows}, {config.patch_dim}) (sum of t*h*w, C*T*P*P), got "
                             f"{pixels.shape}.")
        ends = np.cumsum(grid.prod(axis=1))
        for (t, h, w), end in zip(grid.tolist(), ends.tolist()):
            items.append((pixels[end - t * h * w:end], (t, h, w), name == "image_grid_thw"))
    sizes = [len(item[0]) for item in items]
    largest = max(sizes, default=0)
    slots = len(items) if slots is None else slots
    slot_patches = largest if slot_patches is None else slot_patches
    if slots < len(items) or largest > slot_patches or slot_patches % config.merge_unit:
        raise ValueError(f"{len(items)} images/videos of up to {largest} patches do "
                         f"not fit slots={slots} x slot_patches={slot_patches} (a multiple of "
                         f"spatial_merge_size^2={config.merge_unit}). Fix: raise the image "
                         f"capacity or lower the image size (image_max_pixels).")
    order = list(range(len(items))) if token_slots is None else [int(s) for s in token_slots]
    kinds = [items[s][2] for s in order] if all(0 <= s < len(items) for s in order) else None
    if kinds is None or kinds != sorted(kinds, reverse=True):
        raise ValueError(f"token_slots={order} must name the {len(items)} given images/videos, "
                         f"images before videos.")

    shape = (slots, slot_patches)
    pixels = np.zeros((*shape, config.patch_dim), dtype)
    indices = np.zeros((*shape, 4), np.int32)
    weights = np.zeros((*shape, 4), np.float32)
    rowcol = np.zeros((*shape, 2), np.int32)
    segments = np.full(shape, PAD_SEGMENT, np.int32)
    for slot, (item_pixels, (t, h, w), _) in enumerate(items):
        rows, cols = _frame_rowcol(h, w, merge)
        idx, wts = _position_table_taps(rows, cols, h, w, config.grid_side)
        n = t * h * w
        pixels[slot, :n] = item_pixels
        indices[slot, :n] = np.tile(idx, (t, 1))
        weights[slot, :n] = np.tile(wts, (t, 1))
        rowcol[slot, :n] = np.tile(np.stack([rows, cols], axis=1), (t, 1))
        segments[slot, :n] = np.repeat(np.arange(t), h * w)
    per_slot = slot_patches // config.merge_unit
    taken = [slot * per_slot + np.arange(sizes[slot] // config.merge_unit) for slot in order]
    token_rows = np.concatenate(taken).astype(np.int32) if taken else np.zeros(0, np.int32)
    tokens = len(token_rows) if tokens is None else tokens
    if tokens < len(token_rows):
        raise ValueError(f"the text takes {len(token_rows)} visual tokens, more than "
                         f"tokens={tokens}.")
    image_tokens = sum(sizes[s] for s in order if items[s][2]) // config.merge_unit
    return VisionInputs(
        pixel_values=pixels, pos_indices=indices, pos_weights=weights, rowcol=rowcol,
        segment_ids=segments,
        token_rows=np.concatenate([token_rows, np.zeros(tokens - len(token_rows), np.int32)]),
        num_image_tokens=np.asarray(image_tokens, np.int32))
