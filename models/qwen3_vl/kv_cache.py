"""Fixed-size KV cache for incremental decoding, usable inside `jax.jit` and `lax.while_loop`.

API (see `Qwen3VL.prefill` / `Qwen3VL.decode_step` in model.py):

    cache = KVCache.create(config, batch=B, capacity=S)      # preallocated, all slots empty
    logits, cache = model.prefill(cache, input_ids, positions, attention_mask, vision)
    logits, cache = model.decode_step(cache, next_tokens)     # one token per row; repeat

* Layout: `keys`/`values` [layers, B, S, kv_heads, head_dim], stored after k-norm and RoPE
  (like transformers). All rows write the same slot range: a prefill chunk of length L goes to
  slots [end, end+L) and each decode step to slot `end`; `end` is a traced int32 scalar, so the
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

CACHE_AXES = ("layers", "act_batch", "act_cache_seq", "act_kv_heads", "act_head_dim")


@struct.dataclass
class KVCache:
    keys: jax.Array
    values: jax.Array
    key_mask: jax.Array
    end: jax.Array
    next_position: jax.Array

    @classmethod
    def create(cls, config: Qwen3VLConfig, batch: int, capacity: int,
               dtype: jnp.dtype | None = None) -> "KVCache":
        """Empty cache for `batch` rows and `capacity` token slots (dtype: compute dtype)."""
        if batch <= 0 or capacity <= 0:
            raise ValueError(f"KVCache needs batch > 0 and capacity > 0, got {batch}, {capacity}.")
        t = config.text
        shape = (t.num_hidden_layers, batch, capacity, t.num_key_value_heads, t.head_dim)
        dtype = dtype or config.jnp_dtype
        zeros = constrain(jnp.zeros(shape, dtype), CACHE_AXES, config.sharding_rules)
        return cls(keys=zeros, values=zeros, key_mask=jnp.zeros((batch, capacity), bool),
                   end=jnp.zeros((), jnp.int32), next_position=jnp.zeros((batch,), jnp.int32))

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    @property
    def batch(self) -> int:
        return self.keys.shape[1]
