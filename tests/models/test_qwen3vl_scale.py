"""Scale on paper and execution variants: the 8B config abstractly (parameter and tensor counts
equal transformers' meta-device model; every parameter sharded under a (data, fsdp, tensor)
mesh), and scanned / rematerialised / bf16 execution against the unrolled fp32 model."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import qwen3vl_tiny as tiny
from configs import model_sizes
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import DictSource, abstract_model, hf_shapes, load_params
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.vision_inputs import prepare_vision_inputs
from models.sharding import DEFAULT_RULES, state_specs


@pytest.fixture(scope="module")
def config_8b() -> Qwen3VLConfig:
    return Qwen3VLConfig.from_dict(model_sizes.get_config("8b"))


def test_8b_parameter_and_tensor_counts_equal_transformers_meta_model(config_8b):
    torch = pytest.importorskip("torch")
    import transformers

    with torch.device("meta"):
        hf = transformers.Qwen3VLForConditionalGeneration(
            transformers.Qwen3VLConfig(**model_sizes.get_config("8b").to_dict()))
    theirs = {name: tuple(t.shape) for name, t in hf.state_dict().items()}
    ours = hf_shapes(config_8b)
    assert ours == theirs, (f"tensor tables differ: only ours {sorted(ours.keys() - theirs.keys())[:5]}"
                            f", only HF {sorted(theirs.keys() - ours.keys())[:5]}")
    assert len(ours) == 750
    model = abstract_model(config_8b)
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    count = sum(int(np.prod(leaf.shape)) for leaf in leaves)
    assert count == sum(int(np.prod(s)) for s in theirs.values())
    assert 8.76e9 < count < 8.78e9, f"8B has {count} parameters"


@pytest.mark.parametrize("mesh_shape", [dict(data=2, fsdp=16, tensor=4),
                                        dict(data=1, fsdp=8, tensor=8)])
def test_every_8b_parameter_gets_a_sharding(config_8b, mesh_shape):
    state = nnx.state(abstract_model(config_8b), nnx.Param)
    specs = dict(nnx.to_flat_state(state_specs(state, mesh_shape, DEFAULT_RULES)))
    sharded_bytes = total_bytes = 0
    for path, variable in nnx.to_flat_state(state):
        spec = specs[path].get_value()
        assert len(spec) == len(variable.shape), f"{path}: spec {spec} for {variable.shape}"
        shards = 1
        for dim, axes in zip(variable.shape, spec):
            axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
            size = int(np.prod([mesh_shape[a] for a in axes]))
            assert dim % size == 0, f"{path}: dim {dim} not divisible by {axes}"
            shards *= size
        nbytes = int(np.prod(variable.shape)) * 4
        total_bytes += nbytes
        if shards > 1:
            sharded_bytes += nbytes
        if len(variable.shape) >= 3 and path[-1] == "kernel":  # stacked matrices
            assert shards > 1, f"{path} {variable.shape} stays replicated under {mesh_shape}"
    assert sharded_bytes > 0.99 * total_bytes, "almost all parameter bytes must be sharded"


@pytest.fixture(scope="module")
def tiny_setup():
    """Tiny model with the loud HF weights, its image batch and its unrolled fp32 logits."""
    _, state_dict = tiny.hf_tiny_model()
    config = tiny.tiny_config()
    batch = tiny.image_batch(config)
    positions, _ = rope_index(batch["input_ids"], config, image_grid_thw=batch["image_grid_thw"],
                              attention_mask=batch["attention_mask"])
    vision = prepare_vision_inputs(config.vision, pixel_values=batch["pixel_values"],
                                   image_grid_thw=batch["image_grid_thw"], slots=4,
                                   slot_patches=28)
    inputs = (jnp.asarray(batch["input_ids"]), jnp.asarray(positions),
              jnp.asarray(batch["attention_mask"]), vision)
    model = load_params(config, DictSource(state_dict))
    return model, inputs, np.asarray(_logits(model, *inputs))


_logits = nnx.jit(lambda model, *inputs: model(*inputs))


def _variant(model, **runtime):
    """The same parameters under other runtime options (the stacked layout does not change)."""
    graphdef = nnx.graphdef(abstract_model(model.config.replace(**runtime)))
    return nnx.merge(graphdef, nnx.state(model))


@pytest.mark.parametrize("runtime", [dict(scan_layers=True),
                                     dict(scan_layers=True, remat="full"),
                                     dict(remat="dots", attention_query_chunk=8)], ids=str)
def test_scan_and_remat_give_the_unrolled_logits(tiny_setup, runtime):
    model, inputs, unrolled = tiny_setup
    logits = _logits(_variant(model, **runtime), *inputs)
    np.testing.assert_allclose(np.asarray(logits), unrolled, atol=2e-5,
                               err_msg=f"{runtime} changes the logits")


def _loss(model, input_ids, positions, mask, vision):
    logits = model(input_ids, positions, mask, vision)
    return jnp.mean(jax.nn.log_softmax(logits)[..., 3] * mask)


_value_and_grad = nnx.jit(nnx.value_and_grad(_loss))


def _params(model) -> dict:
    return {path: np.asarray(v.get_value())
            for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


@pytest.mark.slow
def test_scanned_rematerialised_chunked_gradients_equal_unrolled(tiny_setup):
    model, inputs, _ = tiny_setup
    base_loss, base_grads = _value_and_grad(model, *inputs)
    variant = _variant(model, scan_layers=True, remat="full", attention_query_chunk=7)
    loss, grads = _value_and_grad(variant, *inputs)
    np.testing.assert_allclose(float(loss), float(base_loss), rtol=1e-5)
    ours, theirs = _params(grads), _params(base_grads)
    for path in theirs:
        np.testing.assert_allclose(ours[path], theirs[path], atol=1e-6, rtol=1e-4,
                                   err_msg=f"gradient of {path} differs under scan + remat + "
                                           f"chunked attention")


def test_bf16_compute_with_fp32_master_weights(tiny_setup):
    model, inputs, fp32_logits = tiny_setup
    bf16 = _variant(model, dtype="bfloat16", scan_layers=True)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(nnx.state(bf16, nnx.Param)))
    hidden = jax.eval_shape(lambda: bf16.hidden_states(*inputs))
    assert hidden.dtype == jnp.bfloat16, "compute dtype must be bf16"
    valid = np.asarray(inputs[2]).astype(bool)
    err = np.abs(np.asarray(_logits(bf16, *inputs)) - fp32_logits)[valid]
    assert np.isfinite(err).all() and err.max() < 0.25, f"bf16 drifts by {err.max():.3f}"
