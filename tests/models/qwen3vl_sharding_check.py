"""Sharded tiny Qwen3-VL on 8 fake CPU devices equals the single-device model (run by
test_qwen3vl_sharding.py in a subprocess, because the device count is fixed when jax starts).

Prints one JSON line: per mesh shape, the max abs logit error of the sharded forward, of
prefill + decode (with --decode), whether parameters landed on their shardings when streamed from
an HF folder (and, with --init, when initialised by `init_model` on the mesh, with the same
values as on one device), and which parameters really are split across devices.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

sys.path.insert(0, os.path.dirname(__file__))
import qwen3vl_tiny as tiny  # noqa: E402
from models.qwen3_vl.convert import export_hf, load_hf_checkpoint  # noqa: E402
from models.qwen3_vl.kv_cache import KVCache  # noqa: E402
from models.qwen3_vl.model import init_model  # noqa: E402
from models.qwen3_vl.rope_index import rope_index  # noqa: E402
from models.qwen3_vl.vision_inputs import prepare_vision_inputs  # noqa: E402
from models.sharding import make_mesh, state_shardings  # noqa: E402

MESHES = [(1, 2, 4), (2, 2, 2)]
PROMPT = 21


def batch4(config):
    """The two-row image batch twice over (4 rows, 6 images), so batch shards over 4 devices."""
    b = tiny.image_batch(config)
    ids = np.concatenate([b["input_ids"]] * 2)
    mask = np.concatenate([b["attention_mask"]] * 2)
    grids = np.concatenate([b["image_grid_thw"]] * 2)
    pixels = np.concatenate([b["pixel_values"]] * 2)
    positions, _ = rope_index(ids, config, image_grid_thw=grids, attention_mask=mask)
    vision = prepare_vision_inputs(config.vision, pixel_values=pixels, image_grid_thw=grids,
                                   slots=8)
    return jnp.asarray(ids), jnp.asarray(positions), jnp.asarray(mask), vision


@nnx.jit
def forward(model, ids, positions, mask, vision):
    return model(ids, positions, mask, vision)


@nnx.jit
def cached(model, ids, positions, mask, vision):
    cache = KVCache.create(model.config, batch=ids.shape[0], capacity=32)
    first, cache = model.prefill(cache, ids[:, :PROMPT], positions[:, :, :PROMPT],
                                 mask[:, :PROMPT], vision)
    steps = [first]
    for i in range(PROMPT, ids.shape[1]):
        logits, cache = model.decode_step(cache, ids[:, i])
        steps.append(logits)
    return jnp.stack(steps, axis=1)


def _on_shardings(model, mesh, rules) -> tuple[bool, list[str]]:
    """Whether every parameter sits on its rule's sharding, and which ones are split."""
    state = nnx.state(model, nnx.Param)
    wanted = dict(nnx.to_flat_state(state_shardings(state, mesh, rules)))
    placed, split = True, []
    for path, v in nnx.to_flat_state(state):
        value = v.get_value()
        placed &= value.sharding.is_equivalent_to(wanted[path].get_value(), value.ndim)
        if value.addressable_shards[0].data.size < value.size:
            split.append("/".join(map(str, path)))
    return bool(placed), split


def _max_param_diff(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
               for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))))


def main(decode: bool, init: bool) -> None:
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"
    config = tiny.tiny_config()
    model = tiny.random_model(config)
    inputs = batch4(config)
    single = np.asarray(forward(model, *inputs))
    single_cached = np.asarray(cached(model, *inputs)) if decode else None
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        export_hf(model, folder)
        for shape in MESHES:
            mesh = make_mesh(*shape)
            _, sharded = load_hf_checkpoint(folder, mesh=mesh)
            placed, split = _on_shardings(sharded, mesh, config.sharding_rules)
            batch_sharding = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
            ids, positions, mask, vision = inputs
            ids, mask = jax.device_put((ids, mask), batch_sharding)
            positions = jax.device_put(positions,
                                       NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp"))))
            with jax.set_mesh(mesh):
                logits = forward(sharded, ids, positions, mask, vision)
                stepped = cached(sharded, ids, positions, mask, vision) if decode else None
            results["x".join(map(str, shape))] = dict(
                forward_err=float(np.abs(np.asarray(logits) - single).max()),
                cached_err=(float(np.abs(np.asarray(stepped) - single_cached).max())
                            if decode else None),
                logits_spec=str(logits.sharding.spec),
                params_on_their_shardings=placed, split_params=split)
            if init:
                initialised = init_model(config, seed=1, mesh=mesh)
                results["x".join(map(str, shape))].update(
                    init_on_shardings=_on_shardings(initialised, mesh, config.sharding_rules)[0],
                    init_vs_one_device=_max_param_diff(initialised, init_model(config, seed=1)))
    print(json.dumps(dict(meshes=results)))


if __name__ == "__main__":
    main(decode="--decode" in sys.argv, init="--init" in sys.argv)
