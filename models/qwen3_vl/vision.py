"""The Qwen3-VL vision tower (HF `model.visual`): ViT blocks, patch merger, DeepStack mergers.

Patch embed (the Conv3d with stride = kernel, i.e. a dense map of each C*T*P*P row), plus the
learned square position table sampled with host-computed bilinear taps; pre-LN blocks with
fused-QKV attention that is full within a frame (segment mask) and 2D axial RoPE in float32, and
a tanh-GELU MLP. After block `deepstack_visual_indexes[k]` the hidden states go through DeepStack
merger k (LayerNorm *after* the 2x2 shuffle); the final merger normalises *before* it. Both
merger kinds use exact (erf) GELU. The input is a batch of slots (one image or video each,
vision_inputs.py) and attention never crosses a slot, so the tower's cost is linear in the
number of images. Output: merged tokens [S*P/4, out] and DeepStack features [taps, S*P/4, out],
slot-major (each slot's padding after its tokens); `VisionInputs.token_rows` says which row each
visual token of the text takes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.layers import (Embed, LayerNorm, Linear, apply_rotary, attention,
                                    linear_options)
from models.qwen3_vl.rope import vision_rope
from models.qwen3_vl.stack import create_stacked, run_stacked
from models.qwen3_vl.vision_inputs import VisionInputs
from models.sharding import constrain

_LN_EPS = 1e-6
_PATCHES = ("act_images", "act_patches", "act_vis_embed")


def _linear_kw(config: Qwen3VLConfig, rngs: nnx.Rngs) -> dict:
    return linear_options(config, std=config.vision.initializer_range, use_bias=True, rngs=rngs)


class VisionAttention(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        v = config.vision
        kw = _linear_kw(config, rngs)
        self.scale = v.head_dim ** -0.5
        self.query_chunk = config.attention_query_chunk
        self.qkv = Linear([v.hidden_size], [3, v.num_heads, v.head_dim], ["vis_embed"],
                          ["vis_qkv", "vis_heads", "vis_head_dim"], **kw)
        self.proj = Linear([v.num_heads, v.head_dim], [v.hidden_size],
                           ["vis_heads", "vis_head_dim"], ["vis_embed"], **kw)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array, mask: jax.Array
                 ) -> jax.Array:
        qkv = self.qkv(x)  # [S, P, 3, heads, head_dim]
        q, k = (apply_rotary(qkv[:, :, i].astype(jnp.float32), cos, sin).astype(x.dtype)
                for i in (0, 1))
        out = attention(q, k, qkv[:, :, 2], mask, self.scale, self.query_chunk)
        return self.proj(out)


class VisionMLP(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        v = config.vision
        kw = _linear_kw(config, rngs)
        self.linear_fc1 = Linear([v.hidden_size], [v.intermediate_size], ["vis_embed"],
                                 ["vis_mlp"], **kw)
        self.linear_fc2 = Linear([v.intermediate_size], [v.hidden_size], ["vis_mlp"],
                                 ["vis_embed"], **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear_fc2(jax.nn.gelu(self.linear_fc1(x), approximate=True))


class VisionBlock(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        dim, pdt = config.vision.hidden_size, config.jnp_param_dtype
        self.norm1 = LayerNorm(dim, _LN_EPS, param_dtype=pdt, rngs=rngs)
        self.attn = VisionAttention(config, rngs)
        self.norm2 = LayerNorm(dim, _LN_EPS, param_dtype=pdt, rngs=rngs)
        self.mlp = VisionMLP(config, rngs)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array, mask: jax.Array
                 ) -> jax.Array:
        x = x + self.attn(self.norm1(x), cos, sin, mask)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nnx.Module):
    """2x2 patches -> one LLM token: (LN) -> shuffle to 4*hidden -> (LN) -> fc1 -> erf-GELU -> fc2.

    `postshuffle_norm` selects where the LayerNorm sits: after the shuffle over 4*hidden
    (DeepStack mergers) or before it over hidden (the final merger).
    """

    def __init__(self, config: Qwen3VLConfig, postshuffle_norm: bool, rngs: nnx.Rngs):
        v = config.vision
        kw = _linear_kw(config, rngs)
        self.postshuffle_norm = postshuffle_norm
        self.merged_size = v.merged_size
        self.norm = LayerNorm(v.merged_size if postshuffle_norm else v.hidden_size, _LN_EPS,
                              param_dtype=config.jnp_param_dtype, rngs=rngs)
        self.linear_fc1 = Linear([v.merged_size], [v.merged_size], ["vis_merged"], ["vis_mlp"],
                                 **kw)
        self.linear_fc2 = Linear([v.merged_size], [v.out_hidden_size], ["vis_mlp"], ["embed"],
                                 **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.postshuffle_norm:
            x = self.norm(x.reshape(-1, self.merged_size))
        else:
            x = self.norm(x).reshape(-1, self.merged_size)
        return self.linear_fc2(jax.nn.gelu(self.linear_fc1(x), approximate=False))


class VisionModel(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, rngs: nnx.Rngs):
        v = config.vision
        self.config = config
        self.patch_embed = Linear([v.patch_dim], [v.hidden_size], ["vis_patch"], ["vis_embed"],
                                  **_linear_kw(config, rngs))
        self.pos_embed = Embed(v.num_position_embeddings, v.hidden_size, ("vis_pos", "vis_embed"),
                               std=v.initializer_range, dtype=jnp.float32,
                               param_dtype=config.jnp_param_dtype,
                               rules=config.sharding_rules, rngs=rngs)
        self.blocks = create_stacked(v.depth, lambda r: VisionBlock(config, r), rngs)
        self.merger = PatchMerger(config, postshuffle_norm=False, rngs=rngs)
        self.deepstack_merger_list = nnx.List(
            [PatchMerger(config, postshuffle_norm=True, rngs=rngs)
             for _ in v.deepstack_visual_indexes])

    def __call__(self, inputs: VisionInputs) -> tuple[jax.Array, jax.Array]:
        """Merged tokens [S*P/4, out] and DeepStack features [taps, S*P/4, out] (compute dtype)."""
        cfg = self.config
        rules = cfg.sharding_rules
        x = self.patch_embed(inputs.pixel_values)
        table_rows = self.pos_embed(inputs.pos_indices)  # [S, P, 4, hidden] float32
        x = x + jnp.sum(table_rows * inputs.pos_weights[..., None], axis=-2).astype(x.dtype)
        x = constrain(x, _PATCHES, rules)
        cos, sin = vision_rope(inputs.rowcol, cfg.vision.head_dim, cfg.vision.rope_theta)
        mask = inputs.segment_ids[:, :, None] == inputs.segment_ids[:, None, :]  # [S, P, P]

        def step(block: VisionBlock, h: jax.Array, index) -> jax.Array:
            del index
            return constrain(block(h, cos, sin, mask), _PATCHES, rules)

        taps = cfg.vision.deepstack_visual_indexes
        bounds = [0, *(t + 1 for t in taps)]
        features = []
        for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            x = run_stacked(self.blocks, start, stop, x, step, scan=cfg.scan_layers,
                            remat=cfg.remat != "none", remat_policy=cfg.remat_policy)
            features.append(self.deepstack_merger_list[k](x))
        x = run_stacked(self.blocks, bounds[-1], cfg.vision.depth, x, step,
                        scan=cfg.scan_layers, remat=cfg.remat != "none",
                        remat_policy=cfg.remat_policy)
        merged = self.merger(x)
        if not features:
            return merged, jnp.zeros((0, *merged.shape), merged.dtype)
        return merged, jnp.stack(features)
