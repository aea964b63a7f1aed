"""Host-side (numpy) 3-row MRoPE position ids: transformers' `get_rope_index`, checked.

Per sequence, padding removed, walk runs of equal token type (0 text, 1 image, 2 video) with a
counter `cur`: a text run of n tokens gets cur..cur+n-1 on all three rows; an image (grid t,h,w,
merged h'=h/m, w'=w/m) gets T=cur+ti, H=cur+hi, W=cur+wi over its tokens in raster order, then
cur += max(h', w'). A video is split into t frames with t=1 each (frames are separated by
timestamp text). Padded slots get position 0. `rope_deltas[b] = max position + 1 - real tokens`:
the decode position of the token after a prompt holding n real tokens is n + rope_delta, on all
three rows. Unlike transformers, a token run that does not fit its grid is an error here, not a
silent misalignment. Never imports jax.
"""
from __future__ import annotations

import itertools

import numpy as np

from models.qwen3_vl.config import Qwen3VLConfig

TEXT, IMAGE, VIDEO = 0, 1, 2


def token_types(input_ids: np.ndarray, config: Qwen3VLConfig) -> np.ndarray:
    """mm_token_type_ids from the ids: 1 at <|image_pad|>, 2 at <|video_pad|>, else 0."""
    ids = np.asarray(input_ids)
    return np.where(ids == config.image_token_id, IMAGE,
                    np.where(ids == config.video_token_id, VIDEO, TEXT)).astype(np.int32)


def _frames(grid_thw: np.ndarray | None) -> list[tuple[int, int, int]]:
    """Grids as one (1, h, w) entry per image / per video frame."""
    if grid_thw is None:
        return []
    return [(1, h, w) for t, h, w in np.asarray(grid_thw).tolist() for _ in range(t)]


def rope_index(input_ids: np.ndarray, config: Qwen3VLConfig, *,
               image_grid_thw: np.ndarray | None = None,
               video_grid_thw: np.ndarray | None = None,
               attention_mask: np.ndarray | None = None,
               mm_token_type_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """positions int32 [3, B, L] and rope_deltas int32 [B] (see module docstring)."""
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length], got shape {ids.shape}.")
    types = token_types(ids, config) if mm_token_type_ids is None else np.asarray(mm_token_type_ids)
    mask = np.ones(ids.shape, bool) if attention_mask is None else np.asarray(attention_mask) != 0
    if types.shape != ids.shape or mask.shape != ids.shape:
        raise ValueError(f"mm_token_type_ids {types.shape} and attention_mask {mask.shape} must "
                         f"match input_ids {ids.shape}.")
    merge = config.vision.spatial_merge_size
    grids = {IMAGE: iter(_frames(image_grid_thw)), VIDEO: iter(_frames(video_grid_thw))}
    names = {IMAGE: "image", VIDEO: "video frame"}
    positions = np.zeros((3, *ids.shape), np.int64)
    deltas = np.zeros(ids.shape[0], np.int64)
    for b in range(ids.shape[0]):
        row_types = types[b][mask[b]]
        pieces, cur = [], 0
        for kind, run in itertools.groupby(row_types.tolist()):
            n = len(list(run))
            if kind == TEXT:
                pieces.append(np.broadcast_to(np.arange(cur, cur + n), (3, n)))
                cur += n
                continue
            if kind not in grids:
                raise ValueError(f"mm_token_type_ids holds {kind}; expected 0, 1 or 2.")
            grid = next(grids[kind], None)
            if grid is None:
                raise ValueError(f"row {b} has more {names[kind]} token runs than "
                                 f"{names[kind]} grids were given.")
            _, h, w = grid
            hm, wm = h // merge, w // merge
            if n != hm * wm:
                raise ValueError(
                    f"row {b}: a run of {n} {names[kind]} tokens does not match its grid "
                    f"{grid} ({hm}x{wm}={hm * wm} merged tokens). Fix: expand each "
                    f"<|image_pad|> to t*h*w/{merge ** 2} tokens and separate images with "
                    f"<|vision_start|>/<|vision_end|>.")
            hh, ww = np.meshgrid(np.arange(hm), np.arange(wm), indexing="ij")
            pieces.append(np.stack([np.full(n, cur), cur + hh.ravel(), cur + ww.ravel()]))
            cur += max(hm, wm)
        if pieces:
            row = np.concatenate(pieces, axis=1)
            positions[:, b, mask[b]] = row
            deltas[b] = row.max() + 1 - row.shape[1]
    for kind, rest in grids.items():
        if next(rest, None) is not None:
            raise ValueError(f"more {names[kind]} grids were given than {names[kind]} token runs "
                             f"appear in input_ids.")
    return positions.astype(np.int32), deltas.astype(np.int32)
