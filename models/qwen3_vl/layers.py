"""Shared NNX building blocks of the Qwen3-VL port: dense maps, norms, embeddings, attention.

Every parameter is created through `param`, which records its logical axis names (used by
models/sharding.py) and keeps it in `param_dtype`; every op casts weights to the compute dtype at
use, so fp32 master weights can run in bf16. Numerics follow transformers exactly where it
matters for parity: RMSNorm normalises in float32 and casts to the input dtype *before* the
weight multiply, softmax runs in float32, GQA groups query heads by repeat-interleave. This
module holds no Qwen3-VL wiring (that lives in vision.py / text.py) and never touches the host.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx, struct
from jax.sharding import PartitionSpec

from models.qwen3_vl.config import Qwen3VLConfig
from models.sharding import Rules, constrain, logical_to_spec

Initializer = Callable[[jax.Array, Sequence[int], jnp.dtype], jax.Array]


def param(rngs: nnx.Rngs, init: Initializer, shape: Sequence[int],
          axes: Sequence[str], dtype: jnp.dtype) -> nnx.Param:
    """A parameter tagged with one logical axis name per dimension (no eager placement)."""
    if len(axes) != len(shape):
        raise ValueError(f"parameter of shape {tuple(shape)} needs {len(shape)} logical axes, "
                         f"got {tuple(axes)}")
    return nnx.Param(init(rngs.params(), tuple(shape), dtype), out_sharding=tuple(axes),
                     eager_sharding=False)


def normal(std: float) -> Initializer:
    return lambda key, shape, dtype: std * jax.random.normal(key, shape, dtype)


def ones(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype) -> jax.Array:
    del key
    return jnp.ones(shape, dtype)


def zeros(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype) -> jax.Array:
    del key
    return jnp.zeros(shape, dtype)


def linear_options(config: Qwen3VLConfig, *, std: float, use_bias: bool, rngs: nnx.Rngs
                   ) -> dict:
    """Keyword arguments of `Linear` that come from the config (dtypes) and the caller."""
    return dict(use_bias=use_bias, std=std, dtype=config.jnp_dtype,
                param_dtype=config.jnp_param_dtype, rngs=rngs)


class Linear(nnx.Module):
    """y = x . kernel (+ bias), contracting the trailing `in_shape` dims of x.

    Multi-dimensional in/out shapes keep head structure in the parameters themselves (q_proj is
    [embed, heads, head_dim], o_proj is [heads, head_dim, embed]), so heads can be sharded
    without reshapes.
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int],
                 in_axes: Sequence[str], out_axes: Sequence[str], *, use_bias: bool,
                 std: float, dtype: jnp.dtype, param_dtype: jnp.dtype, rngs: nnx.Rngs):
        self.n_in = len(in_shape)
        self.dtype = dtype
        self.kernel = param(rngs, normal(std), (*in_shape, *out_shape),
                            (*in_axes, *out_axes), param_dtype)
        self.bias = param(rngs, zeros, out_shape, out_axes, param_dtype) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jnp.tensordot(x.astype(self.dtype), self.kernel[...].astype(self.dtype),
                          axes=self.n_in)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return y


class RMSNorm(nnx.Module):
    """Qwen3 RMSNorm: float32 normalisation, cast to the input dtype, then times the weight."""

    def __init__(self, dim: int, eps: float, *, param_dtype: jnp.dtype, rngs: nnx.Rngs):
        self.eps = eps
        self.scale = param(rngs, ones, (dim,), ("norm",), param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return normed.astype(x.dtype) * self.scale[...].astype(x.dtype)


class LayerNorm(nnx.Module):
    """LayerNorm with weight and bias, statistics in float32 (the vision tower's norm)."""

    def __init__(self, dim: int, eps: float, *, param_dtype: jnp.dtype, rngs: nnx.Rngs):
        self.eps = eps
        self.scale = param(rngs, ones, (dim,), ("norm",), param_dtype)
        self.bias = param(rngs, zeros, (dim,), ("norm",), param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(x.dtype)


class Embed(nnx.Module):
    """A lookup table [num, dim]; also usable as a tied output head via `table`.

    The lookup first gathers the table's column (FSDP) shards, keeping only its row sharding:
    a row-sharded gather is a masked local lookup plus a sum, while gathering from column shards
    would force XLA to replicate the whole output and re-split it by batch.
    """

    def __init__(self, num: int, dim: int, axes: Sequence[str], *, std: float,
                 dtype: jnp.dtype, param_dtype: jnp.dtype, rules: Rules, rngs: nnx.Rngs):
        self.dtype = dtype
        self.rules = rules
        self.table = param(rngs, normal(std), (num, dim), axes, param_dtype)

    def __call__(self, ids: jax.Array) -> jax.Array:
        row_axis = self.table.get_metadata()["out_sharding"][0]
        table = constrain(self.table[...], (row_axis, None), self.rules)
        return jnp.take(table, ids, axis=0).astype(self.dtype)


def rotate_half(x: jax.Array) -> jax.Array:
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half RoPE; cos/sin broadcast over the head axis (x: [..., heads, head_dim])."""
    return x * cos[..., None, :] + rotate_half(x) * sin[..., None, :]


def _dense_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
                     scale: float, heads_major: bool) -> jax.Array:
    b, lq, nq, h = q.shape
    nk = k.shape[1 if heads_major else 2]
    kv = "bksh" if heads_major else "bskh"
    qg = q.reshape(b, lq, nk, nq // nk, h)
    scores = jnp.einsum(f"bqkgh,{kv}->bkgqs", qg, k, preferred_element_type=jnp.float32) * scale
    scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1)
    if heads_major and lq == 1:
        # One query against a cache (a decode step): XLA:CPU lays this dot out as a transposed
        # generic loop; a fused multiply-and-sum reads the values once and is ~2x faster.
        out = jnp.sum(probs[..., None] * v[:, :, None, None].astype(jnp.float32), axis=-2)
        out = jnp.einsum("bkgqh->bqkgh", out.astype(v.dtype))
    else:
        out = jnp.einsum(f"bkgqs,{kv}->bqkgh", probs.astype(v.dtype), v)
    return out.reshape(b, lq, nq, h)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float,
              query_chunk: int = 0, *, heads_major: bool = False) -> jax.Array:
    """Masked softmax attention with GQA, softmax in float32.

    q: [B, Lq, Nq, H]; k, v: [B, Lk, Nk, H], or [B, Nk, Lk, H] with `heads_major` (a KV cache's
    layout, read without transposing it), Nq a multiple of Nk; mask: [B, Lq, Lk] bool
    (True = may attend). Query head j uses kv head j // (Nq // Nk), like HF's repeat_kv. A query
    row with no allowed key (a padding slot) gets a uniform average instead of NaN, so padding
    can never poison gradients. Returns [B, Lq, Nq, H] in q's dtype.

    `query_chunk` > 0 computes the queries in chunks of that many, each rematerialised, so the
    float32 scores take [chunk, Lk] per head instead of [Lq, Lk] in the forward and the backward
    pass (same result; long prompts and many-patch images need it).
    """
    lq = q.shape[1]
    if query_chunk <= 0 or lq <= query_chunk:
        return _dense_attention(q, k, v, mask, scale, heads_major)
    chunks = -(-lq // query_chunk)
    pad = chunks * query_chunk - lq
    q = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    mask = jnp.pad(mask, ((0, 0), (0, pad), (0, 0)))
    split = lambda x: jnp.moveaxis(  # noqa: E731
        x.reshape(x.shape[0], chunks, query_chunk, *x.shape[2:]), 1, 0)
    one = jax.checkpoint(lambda qm: _dense_attention(qm[0], k, v, qm[1], scale, heads_major))
    out = jax.lax.map(one, (split(q), split(mask)))  # [chunks, B, chunk, Nq, H]
    out = jnp.moveaxis(out, 0, 1)
    return out.reshape(out.shape[0], chunks * query_chunk, *out.shape[3:])[:, :lq]


# ------------------------------------------------------------------ fused (splash) attention
SPLASH_BLOCK = 512  # queries / keys per kernel block (MaxText's default); shorter rows: one block
SPLASH_SCOPE = "splash_causal"  # named scope around the kernels: sdpo_jax.hlo_costs reads it to
# count them on the causal half of their block grid


@struct.dataclass
class Segments:
    """Causal attention within segments, as the splash kernel takes it: query i may attend key
    j <= i when q[b, i] == kv[b, j] ([B, L] int32 each)."""
    q: jax.Array
    kv: jax.Array


def packed_segments(valid: jax.Array, segment_ids: jax.Array | None = None) -> Segments:
    """The kernel's segment ids straight from the rows, with no [B, L, L] mask: a real token's
    id is its packed segment (`segment_ids` [B, L], non-negative; all 0 when None), so it
    attends the real keys of its segment up to itself, exactly as model.py's causal & key-valid
    & same-segment mask lets it. A padding slot (`valid` False) gets -1 - position, an id
    nothing else has: it attends only itself, so the kernel never sees an empty row (its
    softmax would divide by zero) and no real token sees it."""
    own = -1 - jnp.arange(valid.shape[1], dtype=jnp.int32)
    ids = jnp.zeros(valid.shape, jnp.int32) if segment_ids is None \
        else segment_ids.astype(jnp.int32)
    ids = jnp.where(valid, ids, own)
    return Segments(q=ids, kv=ids)


@functools.lru_cache(maxsize=None)
def _splash_kernel(q_heads: int, length: int, block: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as kernel, splash_attention_mask as masks)
    sizes = kernel.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                              block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                              block_q_dq=block, block_kv_dq=block)
    causal = masks.MultiHeadMask([masks.CausalMask((length, length))] * q_heads)
    return kernel.make_splash_mha(causal, block_sizes=sizes, head_shards=1, q_seq_shards=1,
                                  interpret=interpret)


def _splash_local(q: jax.Array, k: jax.Array, v: jax.Array, segments: Segments, scale: float,
                  interpret: bool) -> jax.Array:
    """splash attention of one device's rows: q [b, L, Nq, H], k, v [b, L, Nk, H]."""
    from jax.experimental.pallas.ops.tpu.splash_attention.splash_attention_kernel import \
        SegmentIds
    length = q.shape[1]
    block = min(SPLASH_BLOCK, -(-length // 128) * 128)
    pad = -length % block
    if pad:  # padded slots: ids of their own, attending only themselves
        extra = -1 - length - jnp.arange(pad, dtype=jnp.int32)
        extra = jnp.broadcast_to(extra, (q.shape[0], pad))
        segments = Segments(q=jnp.concatenate([segments.q, extra], 1),
                            kv=jnp.concatenate([segments.kv, extra], 1))
    heads_major = lambda x: jnp.swapaxes(  # noqa: E731
        jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0))), 1, 2)
    kernel = _splash_kernel(q.shape[2], length + pad, block, interpret)
    with jax.named_scope(SPLASH_SCOPE):
        out = jax.vmap(lambda q, k, v, sq, skv: kernel(q, k, v, SegmentIds(sq, skv)))(
            heads_major(q * jnp.asarray(scale, q.dtype)), heads_major(k), heads_major(v),
            segments.q, segments.kv)
    return jnp.swapaxes(out, 1, 2)[:, :length]


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segments: Segments,
                     scale: float, rules: Rules, *, interpret: bool = False) -> jax.Array:
    """Causal attention within `segments` by the Pallas splash-attention kernel (TPU; its
    interpreter elsewhere with `interpret`): fused, so no [Lq, Lk] scores reach HBM, with its
    own backward kernels. q: [B, L, Nq, H]; k, v: [B, L, Nk, H] (GQA as in `attention`).
    Under an active mesh it runs per device on its rows (and heads, when q and kv heads are
    split alike) in a shard_map laid out by `rules`; the sequence must not be split."""
    mesh = jax.sharding.get_abstract_mesh()
    local = functools.partial(_splash_local, scale=scale, interpret=interpret)
    if mesh.empty:
        return local(q, k, v, segments)
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    spec = lambda axes, x: logical_to_spec(axes, rules, sizes, x.shape)  # noqa: E731
    q_spec = spec(("act_batch", "act_seq", "act_q_heads", "act_head_dim"), q)
    kv_spec = spec(("act_batch", "act_seq", "act_kv_heads", "act_head_dim"), k)
    if q_spec[1] is not None or q_spec[3] is not None:
        raise ValueError(f"splash attention needs whole rows and heads on a device; the rules "
                         f"split q as {q_spec}. Fix: set attention_impl='xla' or map act_seq "
                         f"and act_head_dim to None.")
    if q_spec[2] != kv_spec[2]:  # GQA groups would straddle devices: keep heads whole
        q_spec = kv_spec = PartitionSpec(q_spec[0])
    rows = PartitionSpec(q_spec[0])
    return jax.shard_map(local, in_specs=(q_spec, kv_spec, kv_spec, Segments(rows, rows)),
                         out_specs=q_spec, check_vma=False)(q, k, v, segments)
