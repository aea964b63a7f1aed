"""`sdpo_jax.hlo_costs`: loops in a compiled TPU program are counted as often as they run.

XLA's own cost analysis counts a loop body once; the counted costs of a loop must equal those
of the same work written out without the loop, nested loops multiply, and a loop whose trip
count depends on data stays counted once and is listed."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sdpo_jax.aot import compile_only_devices
from sdpo_jax.hlo_costs import program_costs

pytest.importorskip("libtpu", reason="the tpu or test extra installs libtpu")


@pytest.fixture(scope="module")
def matrix() -> jax.ShapeDtypeStruct:
    mesh = Mesh(compile_only_devices("v5p:2x2x1"), ("fsdp",))
    return jax.ShapeDtypeStruct((512, 512), jnp.bfloat16,
                                sharding=NamedSharding(mesh, PartitionSpec()))  # no collectives


def _layer(x: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.tanh(x @ w).astype(x.dtype)


def _compiled(f, *args) -> jax.stages.Compiled:
    return jax.jit(f).lower(*args).compile()


def test_a_loop_costs_what_the_same_steps_written_out_cost(matrix):
    def looped(x):
        return jax.lax.fori_loop(0, 12, lambda i, y: _layer(y, x), x)

    def written_out(x):
        y = x
        for _ in range(12):
            y = _layer(y, x)
        return y

    loop, flat = _compiled(looped, matrix), _compiled(written_out, matrix)
    counted, reference = program_costs(loop), program_costs(flat)
    xla = loop.cost_analysis()
    xla = xla[0] if isinstance(xla, list) else xla
    assert counted.analysed.flops == xla["flops"]  # the host's analysis is the compiler's
    assert counted.total.flops > 10 * counted.analysed.flops
    assert counted.total.flops == pytest.approx(reference.total.flops, rel=1e-3)
    # Every step's reads and writes, and the loop's copy of its carry on each iteration.
    assert reference.total.bytes_accessed < counted.total.bytes_accessed \
        < 3 * reference.total.bytes_accessed
    assert [loop.trips for loop in counted.loops] == [12] and not counted.uncounted


def test_nested_loops_multiply_and_data_dependent_ones_are_listed(matrix):
    def nested(x):
        def three_layers(y):
            return jax.lax.scan(lambda c, _: (_layer(c, x), None), y, length=3)[0]
        return jax.lax.fori_loop(0, 4, lambda i, y: three_layers(y), x)

    def until_small(x):
        return jax.lax.while_loop(lambda y: jnp.sum(y) > 0, lambda y: _layer(y, x), x)

    one = program_costs(_compiled(_layer, matrix, matrix)).total
    counted = program_costs(_compiled(nested, matrix))
    assert counted.total.flops == pytest.approx(12 * one.flops, rel=0.01)
    assert sorted(loop.trips for loop in counted.loops) == [3, 4]
    assert [loop.depth for loop in counted.outer_loops] == [0]
    unknown = program_costs(_compiled(until_small, matrix))
    assert len(unknown.uncounted) == 1 and unknown.total == unknown.analysed

