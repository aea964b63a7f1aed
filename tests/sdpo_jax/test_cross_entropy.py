"""The chunked SFT cross-entropy equals a plain full-logits reference, value and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdpo_jax.losses.cross_entropy import cross_entropy_loss


def reference(hidden, head, tokens, mask):
    logp = jax.nn.log_softmax(hidden @ head, axis=-1)
    picked = jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
    return -jnp.sum(picked * mask) / jnp.maximum(mask.sum(), 1.0)


@settings(max_examples=5, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(1, 11), chunk=st.integers(1, 8),
       seed=st.integers(0, 2 ** 16))
def test_chunked_loss_and_gradients_equal_the_full_logits_reference(batch, length, chunk, seed):
    keys = jax.random.split(jax.random.key(seed), 4)
    hidden = jax.random.normal(keys[0], (batch, length, 8))
    head = jax.random.normal(keys[1], (8, 37))
    tokens = jax.random.randint(keys[2], (batch, length), 0, 37)
    mask = (jax.random.uniform(keys[3], (batch, length)) > 0.3).astype(jnp.float32)
    ours = jax.value_and_grad(lambda h, w: cross_entropy_loss(h, w, tokens, mask,
                                                              chunk_size=chunk)[0],
                              argnums=(0, 1))(hidden, head)
    theirs = jax.value_and_grad(reference, argnums=(0, 1))(hidden, head, tokens, mask)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_accuracy_counts_argmax_hits_under_the_mask():
    head = jnp.eye(4)
    hidden = jnp.array([[[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0]]])
    tokens = jnp.array([[0, 2, 2]])
    _, metrics = cross_entropy_loss(hidden, head, tokens, jnp.array([[1.0, 1.0, 0.0]]),
                                    chunk_size=2)
    assert float(metrics["sft/token_accuracy"]) == pytest.approx(0.5)
    assert float(metrics["sft/response_tokens"]) == 2.0
