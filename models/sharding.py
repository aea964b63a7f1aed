"""Logical axis names -> a (data, fsdp, tensor) device mesh, by rules that are config data.

Every model parameter carries logical axis names in its `out_sharding` metadata (e.g. a q
projection is ("embed", "q_heads", "head_dim")) and key activations are constrained by logical
names too ("act_batch", "act_seq", ...). `Rules` map each logical name to mesh axes; resolving
drops a mesh axis that is already used by another dimension of the same array or that does not
divide the dimension (so a tiny model, or 8 kv heads on tensor=16, falls back to replication
instead of failing). Activation constraints are no-ops unless a mesh is active
(`with jax.set_mesh(mesh):`), so the same model code runs on one device, on fake CPU devices and
on a pod. This module knows nothing about any particular model and must never import one.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

# Parameters: FSDP over the model width, tensor parallel over heads / FFN / vocab; stacked
# layer axes and norms replicated. Activations: batch over (data, fsdp), heads/FFN/vocab over
# tensor. The vision tower is small (0.58 B for 8B); its image slots shard over the batch axes
# like text rows, each image's patches stay whole on one device.
DEFAULT_RULES: Rules = (
    ("act_batch", ("data", "fsdp")),
    ("act_seq", None),
    ("act_embed", None),
    ("act_q_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_head_dim", None),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("act_cache_seq", None),
    ("act_images", ("data", "fsdp")),
    ("act_patches", None),
    ("act_vis_embed", None),
    ("layers", None),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("norm", None),
    ("vis_patch", None),
    ("vis_pos", None),
    ("vis_embed", "fsdp"),
    ("vis_qkv", None),
    ("vis_heads", "tensor"),
    ("vis_head_dim", None),
    ("vis_mlp", "tensor"),
    ("vis_merged", "fsdp"),
)


class ShardingError(ValueError):
    """Rules or a mesh do not fit; the message says which name and how to fix it."""


def validate_rules(rules: Rules) -> None:
    """Check the shape of a rules table (config data) before anything is traced."""
    if not isinstance(rules, (tuple, list)):
        raise ShardingError(f"sharding_rules must be a sequence of (logical_name, mesh_axes) "
                            f"pairs, got {type(rules).__name__}.")
    for rule in rules:
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)):
            raise ShardingError(f"sharding rule {rule!r} must be a (logical_name, mesh_axes) pair.")
        axes = rule[1]
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        if not all(isinstance(a, str) for a in names):
            raise ShardingError(f"sharding rule {rule!r}: mesh axes must be a name, a tuple of "
                                f"names, or None.")


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all); one size may be -1 (the rest)."""
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ShardingError(f"mesh sizes {dict(zip(MESH_AXES, sizes))}: use positive sizes, "
                            f"with at most one -1 meaning 'all remaining devices'.")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ShardingError(f"{len(devices)} devices are not divisible by {known}.")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ShardingError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {int(np.prod(sizes))} "
                            f"devices but {len(devices)} are given.")
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * 3,
                         devices=devices)


def logical_to_spec(logical_axes: Sequence[str | None], rules: Rules,
                    mesh_shape: dict[str, int], shape: Sequence[int] | None = None
                    ) -> PartitionSpec:
    """Resolve logical names to a PartitionSpec for `mesh_shape` (axis name -> size).

    A mesh axis is used at most once per array; axes missing from the mesh, already used, or not
    dividing the dimension (when `shape` is given) are dropped, leaving that part replicated.
    """
    table = dict(rules)
    used: set[str] = set()
    spec: list[MeshAxes] = []
    for dim, name in enumerate(logical_axes):
        if name is None:
            spec.append(None)
            continue
        if name not in table:
            raise ShardingError(f"logical axis {name!r} has no sharding rule. Fix: add "
                                f"({name!r}, <mesh axes or None>) to sharding_rules.")
        wanted = table[name]
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted or ())
        chosen: list[str] = []
        size = 1
        for axis in wanted:
            if axis in used or axis not in mesh_shape:
                continue
            if shape is not None and shape[dim] % (size * mesh_shape[axis]):
                continue
            chosen.append(axis)
            size *= mesh_shape[axis]
        used.update(chosen)
        spec.append(None if not chosen else chosen[0] if len(chosen) == 1 else tuple(chosen))
    return PartitionSpec(*spec)


def _mesh_shape(mesh: Mesh | jax.sharding.AbstractMesh) -> dict[str, int]:
    return dict(zip(mesh.axis_names, mesh.axis_sizes))


def constrain(x: jax.Array, logical_axes: Sequence[str | None], rules: Rules) -> jax.Array:
    """Sharding constraint on an activation by logical names; a no-op without an active mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    spec = logical_to_spec(logical_axes, rules, _mesh_shape(mesh), x.shape)
    return jax.lax.with_sharding_constraint(x, spec)


def variable_logical_axes(variable: nnx.Variable) -> tuple[str | None, ...]:
    """The logical names of a parameter; every parameter of this project must have them."""
    axes = variable.get_metadata().get("out_sharding")
    if axes is None or len(axes) != len(variable.shape):
        raise ShardingError(f"parameter of shape {variable.shape} has logical axes {axes!r}; "
                            f"every parameter needs one logical name per dimension.")
    return tuple(axes)


def state_specs(state: nnx.State, mesh_shape: dict[str, int], rules: Rules) -> nnx.State:
    """A PartitionSpec for every Variable of `state` (abstract or concrete), by logical axes."""

    def one(v: nnx.Variable):
        return v.replace(logical_to_spec(variable_logical_axes(v), rules, mesh_shape, v.shape))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def state_shardings(state: nnx.State, mesh: Mesh, rules: Rules) -> nnx.State:
    """A NamedSharding on `mesh` for every Variable of `state`, by its logical axes."""
    specs = state_specs(state, _mesh_shape(mesh), rules)
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                        is_leaf=lambda x: isinstance(x, PartitionSpec))

