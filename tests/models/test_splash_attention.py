"""The text decoder's fused attention (`attention_impl="splash"`): the Pallas splash kernel, run
by its interpreter on this CPU host, gives what XLA's masked softmax gives on model.py's masks
(causal, padded keys, packed segments), forward and gradients; padding slots stay finite."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.qwen3_vl.layers import attention, packed_segments, splash_attention
from models.sharding import DEFAULT_RULES


def _model_mask(valid: np.ndarray, segment: np.ndarray) -> jax.Array:
    """model.py's mask: causal & key-valid & same segment."""
    length = valid.shape[1]
    causal = np.tril(np.ones((length, length), bool))
    return jnp.asarray(causal[None] & valid[:, None, :]
                       & (segment[:, :, None] == segment[:, None, :]))


def _padded_and_packed(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Row 0 left-padded, row 1 three packed segments then right padding."""
    valid = np.ones((2, length), bool)
    valid[0, :length // 8] = False
    valid[1, length - length // 6:] = False
    segment = np.zeros((2, length), np.int32)
    segment[1, length // 3:] = 1
    segment[1, length // 2:] = 2
    return valid, segment


def test_segments_reproduce_the_mask_and_give_padding_slots_only_themselves():
    length = 48
    valid, segment = _padded_and_packed(length)
    mask = _model_mask(valid, segment)
    ids = packed_segments(jnp.asarray(valid), jnp.asarray(segment))
    causal = jnp.tril(jnp.ones((length, length), bool))
    rebuilt = causal[None] & (ids.q[:, :, None] == ids.kv[:, None, :])
    real = jnp.asarray(valid)[:, :, None]
    np.testing.assert_array_equal(jnp.where(real, rebuilt, False), jnp.where(real, mask, False))
    np.testing.assert_array_equal(jnp.where(real, False, rebuilt),
                                  jnp.where(real, False, jnp.eye(length, dtype=bool)[None]))


@pytest.mark.slow  # the kernel's interpreter on CPU: ~20 s for forward and both backward kernels
def test_splash_kernel_matches_xla_attention_forward_and_gradients():
    batch, length, q_heads, kv_heads, dim = 2, 200, 4, 2, 128  # GQA; 200 pads to a 256 block
    valid, segment = _padded_and_packed(length)
    mask = _model_mask(valid, segment)
    ids = packed_segments(jnp.asarray(valid), jnp.asarray(segment))
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(batch, length, heads, dim)), jnp.float32)
               for heads in (q_heads, kv_heads, kv_heads))
    scale = dim ** -0.5
    real = jnp.asarray(valid)[:, :, None, None]
    weights = jnp.asarray(rng.normal(size=(batch, length, q_heads, dim)), jnp.float32) * real

    def xla(q, k, v):
        return attention(q, k, v, mask, scale)

    def splash(q, k, v):
        return splash_attention(q, k, v, ids, scale, DEFAULT_RULES, interpret=True)

    out_xla, out_splash = xla(q, k, v), splash(q, k, v)
    assert bool(jnp.all(jnp.isfinite(out_splash)))
    np.testing.assert_allclose(jnp.where(real, out_splash, 0), jnp.where(real, out_xla, 0),
                               atol=2e-5)
    grads = [jax.grad(lambda *a, f=f: jnp.sum(f(*a) * weights), argnums=(0, 1, 2))(q, k, v)
             for f in (xla, splash)]
    for name, want, got in zip("qkv", *grads):
        assert bool(jnp.all(jnp.isfinite(got))), f"d{name} not finite"
        np.testing.assert_allclose(got, want, atol=2e-5 * float(jnp.max(jnp.abs(want))),
                                   err_msg=f"d{name}")


@pytest.mark.parametrize("name", ["chart_8b", "web_8b", "slide_8b"])
def test_pod_configs_run_the_fused_kernel(name):
    import importlib

    from sdpo_jax.model_loading import architecture
    from sdpo_jax.run_config import RunConfig
    config = importlib.import_module(f"configs.{name}").get_config()
    assert architecture(RunConfig.from_config(config)).attention_impl == "splash"
