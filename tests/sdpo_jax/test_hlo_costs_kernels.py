"""`sdpo_jax.hlo_costs` counts Pallas kernels, whose inside XLA's cost analysis cannot see: the
splash-attention kernels of the text decoder (forward, dq, dkv) by their block grid, causal
half only under the layer's causal scope, and as often as the loop around them runs."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from models.qwen3_vl.layers import SPLASH_BLOCK, Segments, splash_attention
from models.sharding import DEFAULT_RULES
from sdpo_jax.aot import compile_only_devices
from sdpo_jax.hlo_costs import CAUSAL_SCOPE, program_costs, visited_blocks

pytest.importorskip("libtpu", reason="the tpu or test extra installs libtpu")

ROWS, LENGTH, Q_HEADS, KV_HEADS, DIM = 8, 2048, 8, 2, 128  # 2 rows per chip of v5p:2x2x1


def test_the_layers_scope_is_the_one_the_counter_reads():
    assert CAUSAL_SCOPE == "splash_causal"


@pytest.mark.parametrize("causal, expected", [(False, 16), (True, 10)])
def test_a_causal_kernel_visits_the_lower_triangle_of_its_blocks(causal, expected):
    assert visited_blocks(4, 4, 512, 512, causal) == expected
    assert visited_blocks(2, 4, 1024, 512, causal) == (6 if causal else 8)


def test_splash_attention_kernels_are_counted_with_their_loop():
    mesh = Mesh(compile_only_devices("v5p:2x2x1"), ("fsdp",))
    rows = NamedSharding(mesh, PartitionSpec("fsdp"))

    def abstract(*shape, dtype=jnp.bfloat16):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=rows)

    def loss(q, k, v, ids):
        def layer(x, _):
            out = splash_attention(x, k, v, Segments(ids, ids), DIM ** -0.5, DEFAULT_RULES)
            return out, None
        return jnp.sum(jax.lax.scan(layer, q, length=3)[0].astype(jnp.float32))

    with jax.set_mesh(mesh):
        compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(
            abstract(ROWS, LENGTH, Q_HEADS, DIM), abstract(ROWS, LENGTH, KV_HEADS, DIM),
            abstract(ROWS, LENGTH, KV_HEADS, DIM), abstract(ROWS, LENGTH, dtype=jnp.int32)
        ).compile()
    costs = program_costs(compiled)
    assert not costs.unknown_kernels
    blocks = LENGTH // SPLASH_BLOCK
    pairs = ROWS // 4 * Q_HEADS * visited_blocks(blocks, blocks, SPLASH_BLOCK, SPLASH_BLOCK, True)
    # forward 4, dq 6 and dkv 8 FLOPs per score, per layer of the scan; the forward may run
    # again in the backward pass (its residuals recomputed), never less than once.
    per_layer = SPLASH_BLOCK * SPLASH_BLOCK * DIM * pairs
    assert costs.kernels.flops in (3 * 18 * per_layer, 3 * 22 * per_layer)
    assert costs.total.flops > costs.kernels.flops > 0.9 * costs.total.flops
    # Keys and values are read once per visited block pair: more than the whole q, k, v, out.
    assert costs.kernels.bytes_accessed > 3 * 2 * ROWS // 4 * LENGTH * DIM * 2 * (
        2 * Q_HEADS + 2 * KV_HEADS)
