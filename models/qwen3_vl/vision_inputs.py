"""Host-side (numpy) preparation of packed image/video patches for the vision tower.

The tower sees one packed sequence of patch rows (images first, then videos, like HF's
processor output: rows in 2x2 spatial-merge-block order, each row C*T*P*P long). Everything that
depends on the data-dependent grid sizes is computed here, on the host, so the device program
has static shapes: bilinear (align-corners) sample indices/weights into the learned position
table, each patch's (row, col) for the 2D rotary, and a segment id per frame (attention is full
within a frame and never across frames or images). `pad_to` pads the patch count to a bucket so
jit does not recompile per image size; padded rows form their own segment and are never read
back. This module never touches jax devices beyond building the pytree container.
"""
from __future__ import annotations

import jax
import numpy as np
from flax import struct

from models.qwen3_vl.config import VisionConfig

PAD_SEGMENT = -1


@struct.dataclass
class VisionInputs:
    """Packed patches plus their host-computed metadata; all arrays have a static length N.

    pixel_values [N, C*T*P*P]; pos_indices, pos_weights [N, 4] (position-table taps);
    rowcol [N, 2] int32; segment_ids [N] int32 (PAD_SEGMENT for padding);
    num_image_tokens: int32 scalar, merged tokens that belong to images (videos follow them).
    """
    pixel_values: jax.Array
    pos_indices: jax.Array
    pos_weights: jax.Array
    rowcol: jax.Array
    segment_ids: jax.Array
    num_image_tokens: jax.Array

    @property
    def num_patches(self) -> int:
        return self.pixel_values.shape[0]


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
                          pad_to: int | None = None) -> VisionInputs:
    """Pack image rows then video rows and compute their metadata (see module docstring)."""
    merge = config.spatial_merge_size
    pieces = []
    for pixels, grid, name in ((pixel_values, image_grid_thw, "image_grid_thw"),
                               (pixel_values_videos, video_grid_thw, "video_grid_thw")):
        grid = _check_grids(grid, name, merge)
        rows = int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum())
        if (pixels is None) != (len(grid) == 0):
            raise ValueError(f"{name} and its pixel values must be given together.")
        pixels = np.zeros((0, config.patch_dim), np.float32) if pixels is None else np.asarray(pixels)
        if pixels.shape != (rows, config.patch_dim):
            raise ValueError(f"pixel rows for {name}={grid.tolist()} must have shape "
                             f"({rows}, {config.patch_dim}) (sum of t*h*w, C*T*P*P), got "
                             f"{pixels.shape}.")
        pieces.append((pixels, grid))
    grids = np.concatenate([pieces[0][1], pieces[1][1]])
    pixels = np.concatenate([pieces[0][0], pieces[1][0]]).astype(np.float32)
    num_image_tokens = int((pieces[0][1].prod(axis=1)).sum()) // config.merge_unit

    indices, weights, rowcol, segments = [], [], [], []
    segment = 0
    for t, h, w in grids.tolist():
        rows, cols = _frame_rowcol(h, w, merge)
        idx, wts = _position_table_taps(rows, cols, h, w, config.grid_side)
        for _ in range(t):
            indices.append(idx)
            weights.append(wts)
            rowcol.append(np.stack([rows, cols], axis=1))
            segments.append(np.full(h * w, segment))
            segment += 1
    n = len(pixels)
    total = n if pad_to is None else pad_to
    if total < n or total % config.merge_unit:
        raise ValueError(f"pad_to={pad_to} must be >= the {n} patches and a multiple of "
                         f"spatial_merge_size^2={config.merge_unit}.")
    pad = total - n

    def packed(parts: list[np.ndarray], width: tuple[int, ...], dtype, fill=0) -> np.ndarray:
        body = np.concatenate(parts) if parts else np.zeros((0, *width), dtype)
        return np.concatenate([body.astype(dtype), np.full((pad, *width), fill, dtype)])

    return VisionInputs(
        pixel_values=packed([pixels], (config.patch_dim,), np.float32),
        pos_indices=packed(indices, (4,), np.int32),
        pos_weights=packed(weights, (4,), np.float32),
        rowcol=packed(rowcol, (2,), np.int32),
        segment_ids=packed(segments, (), np.int32, PAD_SEGMENT),
        num_image_tokens=np.asarray(num_image_tokens, np.int32))
