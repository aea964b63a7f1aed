"""Per-token policy-gradient pieces: group advantages, the clipped GRPO surrogate, IS weights, k3.

They act on realised-token log-probs ([batch, time]) and sequence rewards ([batch]), never on
logits, so the fused loss and any other caller share them. Everything is jittable; group ids
are compared pairwise ([batch, batch]), which is cheap for RL batch sizes and needs no bound
on the id values.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# log-ratios are clamped before exp (as SDPO does) so a stale old log-prob cannot overflow.
_LOG_RATIO_CLAMP = 20.0


def group_advantages(rewards: jax.Array, group_ids: jax.Array, *, normalise_std: bool,
                     eps: float) -> tuple[jax.Array, jax.Array]:
    """GRPO advantages r - mean(group) (optionally / (std + eps)) and a flat-group flag per sequence.

    A zero-variance group (all rewards equal, e.g. every rollout failed to execute) and a
    singleton get advantage exactly 0, never NaN. std is the unbiased one (as in TRL and verl).
    """
    rewards = rewards.astype(jnp.float32)
    same = (group_ids[:, None] == group_ids[None, :]).astype(jnp.float32)
    size = same.sum(axis=1)
    mean = same @ rewards / size
    masked = jnp.where(same > 0, rewards[None, :], jnp.nan)
    flat = jnp.nanmax(masked, axis=1) == jnp.nanmin(masked, axis=1)
    centred = rewards - mean
    if normalise_std:
        spread = jnp.sum(same * jnp.square(rewards[None, :] - mean[:, None]), axis=1)
        var = spread / jnp.maximum(size - 1.0, 1.0)
        centred = centred / (jnp.sqrt(var) + eps)
    return jnp.where(flat, 0.0, centred), flat


def importance_weight(logp: jax.Array, old_logp: jax.Array, cap: float) -> jax.Array:
    """Detached min(exp(logp - old_logp), cap): the off-policy correction of the distillation term."""
    log_ratio = jnp.clip(jax.lax.stop_gradient(logp) - old_logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return jnp.minimum(jnp.exp(log_ratio), cap)


def clipped_surrogate(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, *,
                      clip_low: float, clip_high: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """-min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A) per token (asymmetric clip).

    Returns (loss, ratio, clipped) where `clipped` marks tokens whose gradient the clip removed.
    """
    ratio = jnp.exp(jnp.clip(logp - old_logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    unclipped = ratio * advantages
    clipped_ratio = jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    return -jnp.minimum(unclipped, clipped_ratio), ratio, clipped_ratio < unclipped


def k3_kl(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
    """The k3 estimator of KL(policy || reference) on the sampled token: >= 0, unbiased."""
    log_ratio = jnp.clip(ref_logp - logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return jnp.exp(log_ratio) - log_ratio - 1.0
