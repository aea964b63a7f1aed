"""The Qwen3 text decoder of Qwen3-VL (HF `model.language_model`).

Pre-norm layers: RMSNorm -> attention with per-head QK-RMSNorm (before RoPE), GQA, no biases
-> residual; RMSNorm -> SwiGLU -> residual. DeepStack feature k is added at the visual token
positions after layer k (k < number of taps), exactly where transformers adds it. The decoder
takes precomputed cos/sin and an attention mask from model.py, and optionally a KV cache
(keys/values [layers, B, kv_heads, S, head_dim] or one [B, kv_heads, S, head_dim] per layer,
kv_cache.py) that each layer updates in place at a write index; it knows nothing about images
beyond the DeepStack additions. With `attention_impl="splash"` and no cache, attention on a TPU
backend is the fused Pallas kernel, given the rows' segment ids (`layers.packed_segments`, built
by model.py from the same validity and packing as its mask); other backends, and every call
with a cache, keep XLA's masked softmax.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.layers import (Embed, Linear, RMSNorm, Segments, apply_rotary, attention,
                                    linear_options, splash_attention)
from models.qwen3_vl.stack import create_stacked, run_stacked
from models.sharding import constrain


@struct.dataclass
class DeepStack:
    """DeepStack features [taps, N_visual, D] and where they go: token_index [B, L] into the
    feature rows and visual_mask [B, L] (True at image/video pad tokens)."""
    features: jax.Array
    token_index: jax.Array
    visual_mask: jax.Array


@struct.dataclass
class CacheWrite:
    """Keys/values, stacked [layers, B, K, S, H] or one [B, K, S, H] per layer (kv_cache.py), and
    the slot where this chunk's first token goes."""
    keys: jax.Array | tuple[jax.Array, ...]
    values: jax.Array | tuple[jax.Array, ...]
    index: jax.Array


def _linear_kw(config: Qwen3VLConfig, rngs: nnx.Rngs) -> dict:
    return linear_options(config, std=config.text.initializer_range, use_bias=False, rngs=rngs)


class TextAttention(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        t = config.text
        kw = _linear_kw(config, rngs)
        self.rules = config.sharding_rules
        self.scale = t.head_dim ** -0.5
        self.query_chunk = config.attention_query_chunk
        self.q_proj = Linear([t.hidden_size], [t.num_attention_heads, t.head_dim],
                             ["embed"], ["q_heads", "head_dim"], **kw)
        self.k_proj = Linear([t.hidden_size], [t.num_key_value_heads, t.head_dim],
                             ["embed"], ["kv_heads", "head_dim"], **kw)
        self.v_proj = Linear([t.hidden_size], [t.num_key_value_heads, t.head_dim],
                             ["embed"], ["kv_heads", "head_dim"], **kw)
        self.o_proj = Linear([t.num_attention_heads, t.head_dim], [t.hidden_size],
                             ["q_heads", "head_dim"], ["embed"], **kw)
        norm_kw = dict(param_dtype=config.jnp_param_dtype, rngs=rngs)
        self.q_norm = RMSNorm(t.head_dim, t.rms_norm_eps, **norm_kw)
        self.k_norm = RMSNorm(t.head_dim, t.rms_norm_eps, **norm_kw)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array, mask: jax.Array,
                 cache: CacheWrite | None, layer: jax.Array | int,
                 segments: Segments | None = None) -> tuple[jax.Array, CacheWrite | None]:
        heads = ("act_batch", "act_seq", "act_q_heads", "act_head_dim")
        kv_heads = ("act_batch", "act_seq", "act_kv_heads", "act_head_dim")
        q = constrain(apply_rotary(self.q_norm(self.q_proj(x)), cos, sin), heads, self.rules)
        k = constrain(apply_rotary(self.k_norm(self.k_proj(x)), cos, sin), kv_heads, self.rules)
        v = constrain(self.v_proj(x), kv_heads, self.rules)
        if cache is None and segments is not None:
            out = jax.lax.platform_dependent(
                q, k, v, tpu=lambda q, k, v: splash_attention(q, k, v, segments, self.scale,
                                                              self.rules),
                default=lambda q, k, v: attention(q, k, v, mask, self.scale, self.query_chunk))
        elif cache is None:
            out = attention(q, k, v, mask, self.scale, self.query_chunk)
        else:
            cache = _write_layer(cache, layer, k, v)
            out = attention(q, cache.keys[layer].astype(q.dtype),
                            cache.values[layer].astype(q.dtype), mask, self.scale,
                            self.query_chunk, heads_major=True)
        out = constrain(out, heads, self.rules)
        return self.o_proj(out), cache


def _write_layer(cache: CacheWrite, layer: jax.Array | int, k: jax.Array, v: jax.Array
                 ) -> CacheWrite:
    """Write this chunk's k, v [B, L, K, H] into the cache's layer `layer` at its slots."""
    start = (0, 0, cache.index, 0)

    def put(layers: jax.Array | tuple[jax.Array, ...], x: jax.Array
            ) -> jax.Array | tuple[jax.Array, ...]:
        chunk = jnp.swapaxes(x, 1, 2)
        if not isinstance(layers, tuple):
            return jax.lax.dynamic_update_slice(layers, chunk[None].astype(layers.dtype),
                                                (layer, *start))
        if not isinstance(layer, int):
            raise TypeError("a per-layer KV cache needs the decoder layers unrolled (a Python "
                            "layer index). Fix: set scan_layers=False or use a stacked cache.")
        written = jax.lax.dynamic_update_slice(layers[layer], chunk.astype(layers[layer].dtype),
                                               start)
        return (*layers[:layer], written, *layers[layer + 1:])

    return cache.replace(keys=put(cache.keys, k), values=put(cache.values, v))


class TextMLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        t = config.text
        kw = _linear_kw(config, rngs)
        self.rules = config.sharding_rules
        self.gate_proj = Linear([t.hidden_size], [t.intermediate_size], ["embed"], ["mlp"], **kw)
        self.up_proj = Linear([t.hidden_size], [t.intermediate_size], ["embed"], ["mlp"], **kw)
        self.down_proj = Linear([t.intermediate_size], [t.hidden_size], ["mlp"], ["embed"], **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        hidden = jax.nn.silu(self.gate_proj(x)) * self.up_proj(x)
        return self.down_proj(constrain(hidden, ("act_batch", "act_seq", "act_mlp"), self.rules))


class DecoderLayer(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        t = config.text
        norm_kw = dict(param_dtype=config.jnp_param_dtype, rngs=rngs)
        self.input_layernorm = RMSNorm(t.hidden_size, t.rms_norm_eps, **norm_kw)
        self.self_attn = TextAttention(config, rngs)
        self.post_attention_layernorm = RMSNorm(t.hidden_size, t.rms_norm_eps, **norm_kw)
        self.mlp = TextMLP(config, rngs)

    def __call__(self, h: jax.Array, cos: jax.Array, sin: jax.Array, mask: jax.Array,
                 cache: CacheWrite | None, layer: jax.Array | int,
                 segments: Segments | None = None) -> tuple[jax.Array, CacheWrite | None]:
        attn, cache = self.self_attn(self.input_layernorm(h), cos, sin, mask, cache, layer,
                                     segments)
        h = h + attn
        h = h + self.mlp(self.post_attention_layernorm(h))
        return h, cache


class TextModel(nnx.Module):
    """Token embedding, stacked decoder layers with DeepStack injection, final RMSNorm."""

    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        t = config.text
        self.config = config
        self.embed_tokens = Embed(t.vocab_size, t.hidden_size, ("vocab", "embed"),
                                  std=t.initializer_range, dtype=config.jnp_dtype,
                                  param_dtype=config.jnp_param_dtype,
                                  rules=config.sharding_rules, rngs=rngs)
        self.layers = create_stacked(t.num_hidden_layers, lambda r: DecoderLayer(config, r), rngs)
        self.norm = RMSNorm(t.hidden_size, t.rms_norm_eps, param_dtype=config.jnp_param_dtype,
                            rngs=rngs)

    def __call__(self, h: jax.Array, cos: jax.Array, sin: jax.Array, mask: jax.Array,
                 deepstack: DeepStack | None = None, cache: CacheWrite | None = None,
                 segments: Segments | None = None) -> tuple[jax.Array, CacheWrite | None]:
        """Run all layers on input embeddings h [B, L, D]; returns normed hidden states.
        `segments` (the same attention as `mask`, as segment ids) selects the fused kernel on
        TPU; calls with a cache ignore it."""
        cfg = self.config
        residual = ("act_batch", "act_seq", "act_embed")

        def step(layer: DecoderLayer, carry, index):
            hidden, kv = carry
            hidden, kv = layer(hidden, cos, sin, mask, kv, index, segments)
            return constrain(hidden, residual, cfg.sharding_rules), kv

        carry = (constrain(h, residual, cfg.sharding_rules), cache)
        taps = 0 if deepstack is None else deepstack.features.shape[0]
        bounds = [*range(taps + 1), cfg.text.num_hidden_layers]
        for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            carry = run_stacked(self.layers, start, stop, carry, step, scan=cfg.scan_layers,
                                remat=cfg.remat != "none", remat_policy=cfg.remat_policy)
            if k < taps:
                carry = (_add_deepstack(carry[0], deepstack, k), carry[1])
        h, cache = carry
        return self.norm(h), cache


def _add_deepstack(h: jax.Array, deepstack: DeepStack, tap: int) -> jax.Array:
    added = deepstack.features[tap][deepstack.token_index].astype(h.dtype)
    return h + jnp.where(deepstack.visual_mask[..., None], added, jnp.zeros((), h.dtype))
