"""The table between Hugging Face tensor names/layouts and this port's parameter tree.

One `TensorMap` per HF tensor (750 for 8B): its HF name and shape, the path of the Flax leaf,
the layer index when the leaf is stacked ([layers, ...]), and the layout change. A layout is an
intermediate shape plus a permutation: flax = hf.reshape(inter).transpose(perm).reshape(flax),
e.g. q_proj (heads*head_dim, hidden) -> inter (heads, head_dim, hidden) -> perm (2, 0, 1) ->
kernel (hidden, heads, head_dim). The inverse is exact, so export reproduces HF bit for bit.
convert.py does all the I/O; this module is pure data and numpy.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from models.qwen3_vl.config import Qwen3VLConfig

Path = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class TensorMap:
    hf_name: str
    hf_shape: tuple[int, ...]
    path: Path
    layer: int | None  # index into the leading axis of a stacked leaf, None if not stacked
    inter: tuple[int, ...]
    perm: tuple[int, ...]

    @property
    def flax_shape(self) -> tuple[int, ...]:
        """Shape of this tensor's part of the leaf (without the stacked layer axis)."""
        return tuple(self.inter[p] for p in self.perm)

    def to_flax(self, hf: np.ndarray) -> np.ndarray:
        if tuple(hf.shape) != self.hf_shape:
            raise ValueError(f"{self.hf_name}: shape {tuple(hf.shape)}, expected {self.hf_shape}.")
        return np.ascontiguousarray(hf.reshape(self.inter).transpose(self.perm))

    def to_hf(self, flax: np.ndarray) -> np.ndarray:
        inverse = tuple(int(i) for i in np.argsort(self.perm))
        flax = flax.reshape(self.flax_shape)
        return np.ascontiguousarray(flax.transpose(inverse).reshape(self.hf_shape))


def _same(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return shape, tuple(range(len(shape)))


def _linear(out_dim: int, in_dim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch Linear weight [out, in] -> kernel [in, out]."""
    return (out_dim, in_dim), (1, 0)


def _vision(config: Qwen3VLConfig) -> Iterator[tuple[str, tuple, Path, int | None, tuple]]:
    v = config.vision
    d, f, m = v.hidden_size, v.intermediate_size, v.merged_size
    nh, hd = v.num_heads, v.head_dim
    yield ("model.visual.patch_embed.proj.weight",
           (d, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size),
           ("visual", "patch_embed", "kernel"), None, ((d, v.patch_dim), (1, 0)))
    yield "model.visual.patch_embed.proj.bias", (d,), ("visual", "patch_embed", "bias"), None, _same((d,))
    yield ("model.visual.pos_embed.weight", (v.num_position_embeddings, d),
           ("visual", "pos_embed", "table"), None, _same((v.num_position_embeddings, d)))
    for i in range(v.depth):
        block = f"model.visual.blocks.{i}."
        for norm in ("norm1", "norm2"):
            yield block + f"{norm}.weight", (d,), ("visual", "blocks", norm, "scale"), i, _same((d,))
            yield block + f"{norm}.bias", (d,), ("visual", "blocks", norm, "bias"), i, _same((d,))
        yield (block + "attn.qkv.weight", (3 * d, d), ("visual", "blocks", "attn", "qkv", "kernel"),
               i, ((3, nh, hd, d), (3, 0, 1, 2)))
        yield (block + "attn.qkv.bias", (3 * d,), ("visual", "blocks", "attn", "qkv", "bias"), i,
               _same((3, nh, hd)))
        yield (block + "attn.proj.weight", (d, d), ("visual", "blocks", "attn", "proj", "kernel"),
               i, ((d, nh, hd), (1, 2, 0)))
        yield block + "attn.proj.bias", (d,), ("visual", "blocks", "attn", "proj", "bias"), i, _same((d,))
        for fc, (out_dim, in_dim) in (("linear_fc1", (f, d)), ("linear_fc2", (d, f))):
            yield (block + f"mlp.{fc}.weight", (out_dim, in_dim),
                   ("visual", "blocks", "mlp", fc, "kernel"), i, _linear(out_dim, in_dim))
            yield (block + f"mlp.{fc}.bias", (out_dim,), ("visual", "blocks", "mlp", fc, "bias"),
                   i, _same((out_dim,)))
    mergers = [("model.visual.merger.", ("visual", "merger"), d)]
    mergers += [(f"model.visual.deepstack_merger_list.{k}.", ("visual", "deepstack_merger_list", k), m)
                for k in range(len(v.deepstack_visual_indexes))]
    for prefix, path, norm_dim in mergers:
        yield prefix + "norm.weight", (norm_dim,), (*path, "norm", "scale"), None, _same((norm_dim,))
        yield prefix + "norm.bias", (norm_dim,), (*path, "norm", "bias"), None, _same((norm_dim,))
        for fc, (out_dim, in_dim) in (("linear_fc1", (m, m)), ("linear_fc2", (v.out_hidden_size, m))):
            yield (prefix + f"{fc}.weight", (out_dim, in_dim), (*path, fc, "kernel"), None,
                   _linear(out_dim, in_dim))
            yield prefix + f"{fc}.bias", (out_dim,), (*path, fc, "bias"), None, _same((out_dim,))


def _text(config: Qwen3VLConfig) -> Iterator[tuple[str, tuple, Path, int | None, tuple]]:
    t = config.text
    d, f, n, k, hd = (t.hidden_size, t.intermediate_size, t.num_attention_heads,
                      t.num_key_value_heads, t.head_dim)
    lm = ("language_model",)
    yield ("model.language_model.embed_tokens.weight", (t.vocab_size, d),
           (*lm, "embed_tokens", "table"), None, _same((t.vocab_size, d)))
    for i in range(t.num_hidden_layers):
        layer = f"model.language_model.layers.{i}."
        path = (*lm, "layers")
        for norm in ("input_layernorm", "post_attention_layernorm"):
            yield layer + f"{norm}.weight", (d,), (*path, norm, "scale"), i, _same((d,))
        for proj, heads in (("q_proj", n), ("k_proj", k), ("v_proj", k)):
            yield (layer + f"self_attn.{proj}.weight", (heads * hd, d),
                   (*path, "self_attn", proj, "kernel"), i, ((heads, hd, d), (2, 0, 1)))
        yield (layer + "self_attn.o_proj.weight", (d, n * hd),
               (*path, "self_attn", "o_proj", "kernel"), i, ((d, n, hd), (1, 2, 0)))
        for norm in ("q_norm", "k_norm"):
            yield layer + f"self_attn.{norm}.weight", (hd,), (*path, "self_attn", norm, "scale"), i, _same((hd,))
        for proj, (out_dim, in_dim) in (("gate_proj", (f, d)), ("up_proj", (f, d)),
                                        ("down_proj", (d, f))):
            yield (layer + f"mlp.{proj}.weight", (out_dim, in_dim), (*path, "mlp", proj, "kernel"),
                   i, _linear(out_dim, in_dim))
    yield "model.language_model.norm.weight", (d,), (*lm, "norm", "scale"), None, _same((d,))
    if not config.tie_word_embeddings:
        yield ("lm_head.weight", (t.vocab_size, d), ("lm_head", "kernel"), None,
               _linear(t.vocab_size, d))


def tensor_maps(config: Qwen3VLConfig) -> list[TensorMap]:
    """Every HF tensor of `config`'s Qwen3VLForConditionalGeneration, in state_dict order."""
    return [TensorMap(name, tuple(shape), path, layer, tuple(layout[0]), tuple(layout[1]))
            for name, shape, path, layer, layout in (*_vision(config), *_text(config))]
