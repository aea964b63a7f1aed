"""Stacked layers: created once with a leading layer axis, run unrolled or with `lax.scan`.

Parameters of the vision blocks and decoder layers are always stored stacked ([depth, ...],
logical axis "layers"), so a checkpoint does not depend on how the stack is executed. Execution
is chosen by config: unrolled (a Python loop over static slices) or `jax.lax.scan` over a
contiguous range of layers, each optionally wrapped in `jax.checkpoint` with a named policy.
Ranges let callers stop at DeepStack taps (vision blocks 8/16/24, decoder layers 0..2) without
per-layer `where` tricks or collecting every layer's output.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

M = TypeVar("M", bound=nnx.Module)
Carry = Any


def create_stacked(count: int, make: Callable[[nnx.Rngs], M], rngs: nnx.Rngs) -> M:
    """`count` independently initialised copies of `make(rngs)`, stacked on a leading axis."""

    @nnx.split_rngs(splits=count)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def build(layer_rngs: nnx.Rngs) -> M:
        return make(layer_rngs)

    return build(rngs)


def run_stacked(layers: nnx.Module, start: int, stop: int, carry: Carry,
                step: Callable[[nnx.Module, Carry, jax.Array | int], Carry], *,
                scan: bool, remat_policy: Callable[..., bool] | None, remat: bool) -> Carry:
    """Apply layers [start, stop) of a stacked module: carry = step(layer_i, carry, i).

    `i` is a Python int when unrolled and a traced int32 under scan; `step` must work with both
    (use it only for dynamic indexing, e.g. into a KV cache).
    """
    if stop <= start:
        return carry
    graphdef, state = nnx.split(layers)

    def body(c: Carry, xs: tuple[Any, jax.Array | int]) -> tuple[Carry, None]:
        layer_state, index = xs
        return step(nnx.merge(graphdef, layer_state), c, index), None

    if remat:
        body = jax.checkpoint(body, policy=remat_policy)
    if scan:
        sliced = jax.tree.map(lambda x: x[start:stop], state)
        carry, _ = jax.lax.scan(body, carry, (sliced, jnp.arange(start, stop, dtype=jnp.int32)))
        return carry
    for i in range(start, stop):
        carry, _ = body(carry, (jax.tree.map(lambda x, i=i: x[i], state), i))
    return carry
