"""Fixed-size KV cache for incremental decoding, usable inside `jax.jit` and `lax.while_loop`.

API (see `Qwen3VL.prefill` / `Qwen3VL.decode_step` in model.py):

    cache = KVCache.create(config, batch=B, capacity=S)      # preallocated, all slots empty
    logits, cache = model.prefill(cache, input_ids, positions, attention_mask, vision)
    logits, cache = model.decode_step(cache, next_tokens)     # one token per row; repeat

* Layout: `keys`/`values` [layers, B, kv_heads, S, head_dim], stored after k-norm and RoPE
  (like transformers). Heads before slots makes each (row, head) a contiguous [S, head_dim]
  matrix, which the attention dots read as they are; a slot-major layout made XLA copy and
  transpose every layer's whole cache on every decode step.
* Per-layer form (`per_layer=True`): `keys`/`values` are tuples of one [B, kv_heads, S,
  head_dim] array per layer, for a model whose decoder runs per-layer modules
  (`Qwen3VL.with_decode_layout`): reading layer i of a stacked cache is a copy of that
  layer's cache on XLA:CPU, a tuple element is not. Needs unrolled layers (a Python layer index).
* Writes: all rows write the same slot range: a prefill chunk of length L goes to slots
  [end, end+L) and each decode step to slot `end`; `end` is a traced int32 scalar, so the
  cache is a fixed-shape pytree carried through a `while_loop` without recompiles.
* Padding: `key_mask` [B, S] marks slots holding real tokens; padded prompt slots stay False and
  are never attended to, so left padding (or right padding) of the prompt is fine. Slots past
  `end` are False too. A write past `capacity` is moved back by XLA onto the last slots and
  corrupts them: callers must keep `end <= capacity` (prompt length + max new tokens).
* Chunked prefill: several `prefill` calls append chunks; a chunk's `vision` must hold exactly
  the images/videos whose placeholder tokens are in that chunk.
* Positions (MRoPE): `next_position` [B] is the position the next token gets on all three rows.
  Prefill sets it to 1 + the largest position among the row's real tokens, so it continues after
  images exactly like transformers: `next_position = real tokens so far + rope_delta`, with
  `rope_delta` from `rope_index` (negative after images, 0 for text). Each decode step uses it and
  adds 1, per row.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from models.qwen3_vl.config import Qwen3VLConfig
from models.sharding import constrain

CACHE_AXES = ("layers", "act_batch", "act_kv_heads", "act_cache_seq", "act_head_dim")
# Axes counted from the end, valid in both forms (stacked array or one array per layer).
BATCH_AXIS, SLOT_AXIS = -4, -2


def cache_axes(x: jax.Array) -> tuple[str, ...]:
    """The logical axes of a stacked cache array or of one layer's."""
    return CACHE_AXES[-x.ndim:]


@struct.dataclass
class KVCache:
    keys: jax.Array | tuple[jax.Array, ...]
    values: jax.Array | tuple[jax.Array, ...]
    key_mask: jax.Array
    end: jax.Array
    next_position: jax.Array

    @classmethod
    def create(cls, config: Qwen3VLConfig, batch: int, capacity: int,
               dtype: jnp.dtype | None = None, per_layer: bool = False) -> "KVCache":
        """Empty cache for `batch` rows and `capacity` token slots (dtype: compute dtype),
        stacked or `per_layer` (see the module docstring)."""
        if batch <= 0 or capacity <= 0:
            raise ValueError(f"KVCache needs batch > 0 and capacity > 0, got {batch}, {capacity}.")
        t = config.text
        shape = (batch, t.num_key_value_heads, capacity, t.head_dim)
        if not per_layer:
            shape = (t.num_hidden_layers, *shape)
        zeros = jnp.zeros(shape, dtype or config.jnp_dtype)
        zeros = constrain(zeros, cache_axes(zeros), config.sharding_rules)
        if per_layer:
            zeros = (zeros,) * t.num_hidden_layers
        return cls(keys=zeros, values=zeros, key_mask=jnp.zeros((batch, capacity), bool),
                   end=jnp.zeros((), jnp.int32), next_position=jnp.zeros((batch,), jnp.int32))

    @property
    def capacity(self) -> int:
        return self.key_mask.shape[1]

    @property
    def batch(self) -> int:
        return self.key_mask.shape[0]
