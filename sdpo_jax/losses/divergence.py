"""The alpha-family of divergences between teacher and student, on log-probabilities.

Written per category (per vocabulary entry or per top-k bucket) so that the fused loss can sum
the terms over vocabulary tiles and differentiate each term on its own. Pure functions of
arrays: no chunking, no masks, no config objects.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# Top-k mass is clamped below 1 before log(1 - mass), as SDPO does, so the tail stays finite.
_TAIL_MASS_CLAMP = -1e-7


def alpha_divergence_terms(student_logp: jax.Array, teacher_logp: jax.Array,
                           alpha: float) -> jax.Array:
    """Per-category terms whose sum over the support is the divergence (SDPO's alpha convention).

    alpha 0: KL(teacher || student); alpha 1: KL(student || teacher); otherwise the generalised
    JSD alpha * KL(T || M) + (1 - alpha) * KL(S || M) with the mixture M = (1 - alpha) S + alpha T.
    alpha is a Python float so the branch is chosen at trace time.
    """
    p_student = jnp.exp(student_logp)
    p_teacher = jnp.exp(teacher_logp)
    if alpha == 0.0:
        return p_teacher * (teacher_logp - student_logp)
    if alpha == 1.0:
        return p_student * (student_logp - teacher_logp)
    mixture_logp = jnp.logaddexp(student_logp + math.log1p(-alpha), teacher_logp + math.log(alpha))
    return (alpha * p_teacher * (teacher_logp - mixture_logp)
            + (1.0 - alpha) * p_student * (student_logp - mixture_logp))


def topk_categories(topk_logp: jax.Array, with_tail: bool) -> jax.Array:
    """[..., k] top-k log-probs -> the distribution distilled on: k + tail bucket, or k renormalised."""
    mass = jax.nn.logsumexp(topk_logp, axis=-1, keepdims=True)
    if not with_tail:
        return topk_logp - mass
    tail = jnp.log(-jnp.expm1(jnp.minimum(mass, _TAIL_MASS_CLAMP)))
    return jnp.concatenate([topk_logp, tail], axis=-1)


def entropy_from_logits(logits: jax.Array, logsumexp: jax.Array) -> jax.Array:
    """Entropy of softmax(logits) over the last axis, given its logsumexp."""
    logp = logits - logsumexp[..., None]
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
