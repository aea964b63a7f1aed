"""Stacked layers: created once with a leading layer axis, run unrolled or with `lax.scan`.

Parameters of the vision blocks and decoder layers are always stored stacked ([depth, ...],
logical axis "layers"), so a checkpoint does not depend on how the stack is executed. Execution
is chosen by config: unrolled (a Python loop over static slices) or `jax.lax.scan` over a
contiguous range of layers, each optionally wrapped in `jax.checkpoint` with a named policy.
Ranges let callers stop at DeepStack taps (vision blocks 8/16/24, decoder layers 0..2) without
per-layer `where` tricks or collecting every layer's output.

`unstack` turns a stack into per-layer modules (their own copies of the slices) for programs
that run the same layers many times, e.g. a decode loop: XLA:CPU cannot fuse a leading-axis
slice into the dot that reads it, so `x[i]` inside a loop copies every layer's weights on every
iteration. `run_stacked` accepts either form; per-layer modules always run unrolled.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
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


def unstack(layers: M) -> nnx.List:
    """The stacked module as a list of per-layer modules, each holding a copy of its slice.

    Build it once outside a loop (it costs one more copy of the weights while both are alive);
    on TPU a leading-axis slice is free, so there it only costs memory.
    """
    graphdef, state = nnx.split(layers)
    count = jax.tree.leaves(state)[0].shape[0]
    return nnx.List([nnx.merge(graphdef, jax.tree.map(lambda x, i=i: x[i], state))
                     for i in range(count)])


def run_stacked(layers: nnx.Module | Sequence[nnx.Module], start: int, stop: int, carry: Carry,
                step: Callable[[nnx.Module, Carry, jax.Array | int], Carry], *,
                scan: bool, remat_policy: Callable[..., bool] | None, remat: bool) -> Carry:
    """Apply layers [start, stop) of a stacked module, or of `unstack`'s per-layer list
    (always unrolled): carry = step(layer_i, carry, i).

    `i` is a Python int when unrolled and a traced int32 under scan; `step` must work with both
    (use it only for dynamic indexing, e.g. into a KV cache).
    """
    if stop <= start:
        return carry
    per_layer = isinstance(layers, Sequence)
    graphdef = nnx.graphdef(layers[start] if per_layer else layers)

    def body(c: Carry, xs: tuple[Any, jax.Array | int]) -> tuple[Carry, None]:
        layer_state, index = xs
        return step(nnx.merge(graphdef, layer_state), c, index), None

    if remat:
        body = jax.checkpoint(body, policy=remat_policy)
    if per_layer:
        states = [nnx.state(layers[i]) for i in range(start, stop)]
    else:
        state = nnx.state(layers)
        if scan:
            sliced = jax.tree.map(lambda x: x[start:stop], state)
            carry, _ = jax.lax.scan(body, carry,
                                    (sliced, jnp.arange(start, stop, dtype=jnp.int32)))
            return carry
        states = [jax.tree.map(lambda x, i=i: x[i], state) for i in range(start, stop)]
    for i, layer_state in zip(range(start, stop), states):
        carry, _ = body(carry, (layer_state, i))
    return carry
