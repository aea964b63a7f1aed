"""The naive full-logits SDPO + GRPO loss: the ground truth for the fused one.

It materialises [B, T, V] logits for student and teacher and lets autodiff do the rest, written
as plainly as the parent method's implementations so that a reader can check it by eye. Used by
the tests (values and gradients of `sdpo_loss` must match it) and as the baseline of
benchmarks/loss_memory.py. Never call it in training: at 8B shapes it needs gigabytes of logits.
Group advantages come from `policy.group_advantages` (tested on its own against plain numpy).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sdpo_jax.losses.batch import LossBatch
from sdpo_jax.losses.config import LossConfig
from sdpo_jax.losses.policy import group_advantages


def reference_loss(student_hidden: jax.Array, teacher_hidden: jax.Array, lm_head: jax.Array,
                   batch: LossBatch, config: LossConfig, *,
                   teacher_lm_head: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(loss, parts) with the same meaning as `sdpo_loss`, from full logits."""
    batch.check(config, student_hidden.shape[0], student_hidden.shape[1])
    sg = jax.lax.stop_gradient
    teacher_lm_head = lm_head if teacher_lm_head is None else teacher_lm_head
    logits = jnp.einsum("bth,hv->btv", student_hidden, lm_head,
                        preferred_element_type=jnp.float32) / config.temperature
    teacher_logits = sg(jnp.einsum("bth,hv->btv", teacher_hidden, teacher_lm_head,
                                   preferred_element_type=jnp.float32)) / config.temperature
    logp = jax.nn.log_softmax(logits)
    teacher_logp = jax.nn.log_softmax(teacher_logits)
    picked = lambda x, idx: jnp.take_along_axis(x, idx, axis=-1)
    token_logp = picked(logp, batch.tokens[..., None])[..., 0]
    teacher_token_logp = picked(teacher_logp, batch.tokens[..., None])[..., 0]

    if config.distill_support == "sampled_token":
        value = token_logp - teacher_token_logp
        surrogate = sg(value) * token_logp
        per_token = sg(value) + surrogate - sg(surrogate)
    elif config.distill_support == "full":
        per_token = _alpha_divergence(logp, teacher_logp, config.distill_alpha)
    else:
        _, top = jax.lax.top_k(sg(logits), config.topk)
        per_token = _alpha_divergence(_support(picked(logp, top), config.topk_tail),
                                      _support(picked(teacher_logp, top), config.topk_tail),
                                      config.distill_alpha)

    mask = batch.mask.astype(jnp.float32)
    distill_mask = mask if batch.distill_mask is None else mask * batch.distill_mask[:, None]
    credit = 1.0 if batch.credit is None else batch.credit
    weight = credit * distill_mask
    if config.distill_is_clip is not None:
        log_ratio = jnp.clip(sg(token_logp) - batch.old_logprobs, -20.0, 20.0)
        weight = weight * jnp.minimum(jnp.exp(log_ratio), config.distill_is_clip)
    distill = jnp.sum(weight * per_token) / jnp.maximum(distill_mask.sum(), 1.0)
    entropy = -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    parts = {"loss/distill": distill,
             "distill/div_mean": jnp.sum(per_token * distill_mask) / jnp.maximum(distill_mask.sum(), 1),
             "policy/entropy": jnp.sum(entropy * mask) / jnp.maximum(mask.sum(), 1.0)}
    total = distill
    if config.uses_grpo:
        grpo, clip_frac = _grpo(config, batch, token_logp, mask)
        parts.update({"loss/grpo": grpo, "grpo/clip_frac": clip_frac})
        total = total + config.beta * grpo
    parts["loss/total"] = total
    return total, parts


def _kl(p_logp: jax.Array, q_logp: jax.Array) -> jax.Array:
    """KL(p || q) over the last axis."""
    return jnp.sum(jnp.exp(p_logp) * (p_logp - q_logp), axis=-1)


def _alpha_divergence(student_logp, teacher_logp, alpha: float) -> jax.Array:
    if alpha == 0.0:
        return _kl(teacher_logp, student_logp)
    if alpha == 1.0:
        return _kl(student_logp, teacher_logp)
    mixture = jax.nn.logsumexp(jnp.stack([student_logp + math.log(1 - alpha),
                                          teacher_logp + math.log(alpha)]), axis=0)
    return alpha * _kl(teacher_logp, mixture) + (1 - alpha) * _kl(student_logp, mixture)


def _support(topk_logp: jax.Array, tail: bool) -> jax.Array:
    total = jax.nn.logsumexp(topk_logp, axis=-1, keepdims=True)
    if not tail:
        return topk_logp - total
    rest = jnp.log(-jnp.expm1(jnp.minimum(total, -1e-7)))
    return jnp.concatenate([topk_logp, rest], axis=-1)


def _grpo(config: LossConfig, batch: LossBatch, token_logp, mask):
    if config.advantage == "given":
        advantages, keep = batch.advantages, mask
    else:
        advantages, flat = group_advantages(batch.rewards, batch.group_ids,
                                            normalise_std=config.advantage == "mean_std",
                                            eps=config.advantage_eps)
        keep = mask * (~flat)[:, None] if config.drop_flat_groups else mask
    ratio = jnp.exp(token_logp - batch.old_logprobs)
    lower, upper = 1 - config.clip_low, 1 + config.clip_high
    unclipped = ratio * advantages[:, None]
    clipped = jnp.clip(ratio, lower, upper) * advantages[:, None]
    per_token = -jnp.minimum(unclipped, clipped)
    if config.ref_kl_coef > 0:
        delta = batch.ref_logprobs - token_logp
        per_token = per_token + config.ref_kl_coef * (jnp.exp(delta) - delta - 1)
    if config.aggregation == "token":
        loss = jnp.sum(per_token * keep) / jnp.maximum(keep.sum(), 1.0)
    else:
        lengths = keep.sum(axis=1)
        per_sequence = jnp.sum(per_token * keep, axis=1) / jnp.maximum(lengths, 1.0)
        loss = jnp.sum(per_sequence) / jnp.maximum(jnp.sum(lengths > 0), 1)
    clip_frac = jnp.sum((clipped < unclipped) * keep) / jnp.maximum(keep.sum(), 1.0)
    return loss, clip_frac
