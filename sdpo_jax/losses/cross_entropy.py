"""Token cross-entropy for supervised warm start, chunked over positions: never [B, T, V].

    loss, metrics = cross_entropy_loss(hidden, lm_head, tokens, mask, chunk_size=64)

loss = -sum_t m_t log p(y_t) / sum_t m_t (the token mean over the batch's response tokens).
Each chunk of positions is a rematerialised block (`jax.checkpoint`): the forward keeps only
per-token log-probabilities, the backward recomputes one [B, chunk, V] logit block at a time.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

_F32 = jnp.float32


def cross_entropy_loss(hidden: jax.Array, lm_head: jax.Array, tokens: jax.Array,
                       mask: jax.Array, *, chunk_size: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(loss, metrics) for hidden [B, T, H] predicting tokens [B, T] under mask [B, T] with the
    head [H, V]; gradients flow to hidden and the head."""
    batch, length, _ = hidden.shape
    chunk = min(chunk_size, length)
    count = -(-length // chunk)
    pad = chunk * count - length
    hidden = jnp.pad(hidden, [(0, 0), (0, pad), (0, 0)])
    tokens = jnp.pad(tokens, [(0, 0), (0, pad)])

    @jax.checkpoint
    def chunk_logp(index):
        """log p(y_t) and whether y_t is the argmax, for one chunk of positions."""
        h = jax.lax.dynamic_slice_in_dim(hidden, index * chunk, chunk, axis=1)
        y = jax.lax.dynamic_slice_in_dim(tokens, index * chunk, chunk, axis=1)
        logits = jnp.einsum("bch,hv->bcv", h, lm_head, preferred_element_type=_F32)
        target = jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        return target - jax.nn.logsumexp(logits, axis=-1), target >= jnp.max(logits, axis=-1)

    per_chunk = jax.lax.map(chunk_logp, jnp.arange(count))
    logp, correct = (jnp.moveaxis(x, 0, 1).reshape(batch, count * chunk)[:, :length]
                     for x in per_chunk)
    mask = mask.astype(_F32)
    tokens_in = jnp.maximum(mask.sum(), 1.0)
    loss = -jnp.sum(logp * mask) / tokens_in
    stop = jax.lax.stop_gradient
    metrics = {"loss/cross_entropy": stop(loss),
               "sft/token_accuracy": stop(jnp.sum(correct * mask) / tokens_in),
               "sft/response_tokens": mask.sum()}
    return loss, metrics
