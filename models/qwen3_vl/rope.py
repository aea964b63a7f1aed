"""Rotary angles on device: interleaved multimodal RoPE (text) and 2D axial RoPE (vision).

Text (MRoPE): every token has three positions (T, H, W; equal for text). Frequency slot j of
the head_dim/2 slots takes its position from H when j % 3 == 1 and j < 3*section[1], from W when
j % 3 == 2 and j < 3*section[2], else from T: the layout [THW THW ... THW TTTT] that transformers
always uses (it ignores `mrope_interleaved`; the chunked Qwen2-VL layout is wrong here).
Vision: each patch has (row, col); angles are [row*inv, col*inv] duplicated, i.e. the layout
[h, w, h, w] over the head. Positions come from the host (rope_index.py / vision_inputs.py); this
module only turns them into cos/sin.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def inverse_frequencies(dim: int, theta: float) -> jax.Array:
    """1 / theta^(2i/dim) for i < dim/2, in float32 like transformers."""
    return 1.0 / (theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))


def mrope_axis_of_slot(head_dim: int, mrope_section: tuple[int, int, int]) -> np.ndarray:
    """Which of T (0), H (1), W (2) drives each of the head_dim/2 frequency slots."""
    slots = np.arange(head_dim // 2)
    axis = np.zeros(head_dim // 2, np.int32)
    axis[(slots % 3 == 1) & (slots < 3 * mrope_section[1])] = 1
    axis[(slots % 3 == 2) & (slots < 3 * mrope_section[2])] = 2
    return axis


def text_rope(positions: jax.Array, head_dim: int, theta: float,
              mrope_section: tuple[int, int, int], dtype: jnp.dtype
              ) -> tuple[jax.Array, jax.Array]:
    """cos, sin of shape [B, L, head_dim] (in `dtype`) from positions [3, B, L]."""
    axis = mrope_axis_of_slot(head_dim, mrope_section)
    slot_positions = jnp.moveaxis(positions[axis], 0, -1).astype(jnp.float32)  # [B, L, hd/2]
    angles = slot_positions * inverse_frequencies(head_dim, theta)
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


def vision_rope(rowcol: jax.Array, head_dim: int, theta: float
                ) -> tuple[jax.Array, jax.Array]:
    """float32 cos, sin of shape [..., head_dim] from per-patch (row, col) positions [..., 2]."""
    inv = inverse_frequencies(head_dim // 2, theta)
    angles = rowcol.astype(jnp.float32)[..., None] * inv  # [..., 2, head_dim/4]
    angles = angles.reshape(*rowcol.shape[:-1], -1)  # [h..., w...]
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)
