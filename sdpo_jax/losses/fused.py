"""The fused, chunked SDPO + GRPO loss: from final hidden states and the LM head, never [B, T, V].

Why it is exact and small. Every term of the objective is a per-token function of the
student's logit row s (teacher logits u are constants) of the form

    loss_t = Psi_t(lse(s), s[y_t], s[topk_t]) + a_t * sum_v phi(s_v, u_v; lse(s), lse(u))

(Psi: GRPO, k3, sampled-token and top-k distillation; phi: full-vocabulary divergences). So

    d loss / d s_v = a_t * dphi/ds_v + c_t * softmax(s)_v + sum_i g_ti [v == idx_ti]

with per-token scalars c_t (= dPsi/dlse + a_t * sum_v dphi/dlse) and g_ti (= dPsi/ds[idx_ti]).

Forward: one scan over chunks of response positions computes, per token, the full-row
statistics (logsumexps, realised-token and top-k logits, the full-vocabulary divergence and its
lse-derivative, entropy); all GRPO and distillation terms, their per-token scalars (by autodiff
on [B, T] arrays) and the metrics then come out of that single pass over the student's chunks.
Backward (jax.custom_vjp): vocabulary tiles outer, position chunks inner, recompute the logit
tile, assemble d loss / d s from the scalars above and write that tile of the LM-head gradient
once (no [hidden, vocab] accumulator) while accumulating d hidden in float32. Live memory is a
[B, chunk, vocab] block in the forward and a [B, chunk, vocab_tile] block in the backward.
(XLA:CPU cannot slice bf16, so there a bf16 head is converted to one float32 copy for the
backward's tiles; benchmarks/loss_memory.py reports that share. TPUs slice bf16 natively.)

The teacher's hidden states and head get no gradient. Never use this module for sampling: it
scores given tokens only.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sdpo_jax.losses import divergence, policy
from sdpo_jax.losses.batch import LossBatch
from sdpo_jax.losses.config import LossConfig

_F32 = jnp.float32


def sdpo_loss(student_hidden: jax.Array, teacher_hidden: jax.Array, lm_head: jax.Array,
              batch: LossBatch, config: LossConfig, *,
              teacher_lm_head: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(loss, metrics) of credit-weighted self-distillation + beta * GRPO; differentiable.

    student_hidden, teacher_hidden: [B, T, H] final (normed) hidden states at the response
      positions, aligned on the same response tokens; the teacher's are stop-gradient.
    lm_head: [H, V] (the tied embedding transposed, or the untied head) -> gradient.
    teacher_lm_head: [H, V] for an EMA/base teacher; default the student's head (no gradient
      flows through the teacher's use of it).
    Gradients flow to student_hidden and lm_head only; metrics carry none.
    """
    _check_arrays(student_hidden, teacher_hidden, lm_head, teacher_lm_head, batch, config)
    teacher_lm_head = lm_head if teacher_lm_head is None else teacher_lm_head
    frozen = jax.lax.stop_gradient
    return _fused_loss(config, student_hidden, lm_head, frozen(teacher_hidden),
                       frozen(teacher_lm_head), jax.tree.map(frozen, batch))


class _Residuals(NamedTuple):
    """What the backward pass needs: inputs, per-token row statistics and per-token scalars."""

    student_hidden: jax.Array
    lm_head: jax.Array
    teacher_hidden: jax.Array
    teacher_lm_head: jax.Array
    lse_student: jax.Array
    lse_teacher: jax.Array
    phi_coef: jax.Array | None      # a_t (full-vocabulary divergences only)
    lse_cotangent: jax.Array        # c_t
    indices: jax.Array              # [B, T, 1 (+ k)]: realised token (then top-k)
    index_cotangents: jax.Array     # g_ti


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused_loss(config, student_hidden, lm_head, teacher_hidden, teacher_lm_head, batch):
    out, _ = _forward(config, student_hidden, lm_head, teacher_hidden, teacher_lm_head, batch)
    return out


def _fused_loss_fwd(config, student_hidden, lm_head, teacher_hidden, teacher_lm_head, batch):
    return _forward(config, student_hidden, lm_head, teacher_hidden, teacher_lm_head, batch)


def _fused_loss_bwd(config, residuals: _Residuals, cotangents):
    loss_cotangent = cotangents[0]
    d_hidden, d_head = _head_backward(config, residuals, loss_cotangent)
    return d_hidden, d_head, None, None, None


_fused_loss.defvjp(_fused_loss_fwd, _fused_loss_bwd)


def _forward(config: LossConfig, student_hidden, lm_head, teacher_hidden, teacher_lm_head,
             batch: LossBatch):
    rows = _row_statistics(config, student_hidden, lm_head, teacher_hidden, teacher_lm_head,
                           batch.tokens)
    differentiable = {"lse_student": rows.pop("lse_student"), "token_logit": rows.pop("token_logit")}
    if config.distill_support == "topk":
        differentiable["topk_logits"] = rows.pop("topk_logits")
    objective = functools.partial(_token_objective, config, rows=rows, batch=batch)
    (loss, (metrics, distill_coef)), grads = jax.value_and_grad(objective, has_aux=True)(
        differentiable)
    indices, index_cotangents = batch.tokens[..., None], grads["token_logit"][..., None]
    if config.distill_support == "topk":
        indices = jnp.concatenate([indices, rows["topk_indices"]], axis=-1)
        index_cotangents = jnp.concatenate([index_cotangents, grads["topk_logits"]], axis=-1)
    residuals = _Residuals(
        student_hidden, lm_head, teacher_hidden, teacher_lm_head,
        differentiable["lse_student"], rows["lse_teacher"],
        distill_coef if config.distill_support == "full" else None,
        grads["lse_student"], indices, index_cotangents)
    return (loss, metrics), residuals


# ----------------------------------------------------------------------------- forward pass


def _logits(hidden: jax.Array, head: jax.Array, temperature: float) -> jax.Array:
    return jnp.einsum("bch,hv->bcv", hidden, head, preferred_element_type=_F32) / temperature


def _chunk_row_statistics(config: LossConfig, student_hidden, lm_head, teacher_hidden,
                          teacher_lm_head, tokens) -> dict[str, jax.Array]:
    """Everything later stages need from one [B, C, V] block of student and teacher logits."""
    student = _logits(student_hidden, lm_head, config.temperature)
    teacher = _logits(teacher_hidden, teacher_lm_head, config.temperature)
    lse_student = jax.nn.logsumexp(student, axis=-1)
    lse_teacher = jax.nn.logsumexp(teacher, axis=-1)
    take = lambda logits, idx: jnp.take_along_axis(logits, idx, axis=-1)
    rows = {"lse_student": lse_student, "lse_teacher": lse_teacher,
            "token_logit": take(student, tokens[..., None])[..., 0],
            "teacher_token_logit": take(teacher, tokens[..., None])[..., 0],
            "entropy": divergence.entropy_from_logits(student, lse_student)}
    if config.distill_support == "full":
        def full_divergence(lse):
            terms = divergence.alpha_divergence_terms(
                student - lse[..., None], teacher - lse_teacher[..., None], config.distill_alpha)
            return jnp.sum(terms, axis=-1)
        value, pullback = jax.vjp(full_divergence, lse_student)
        rows["full_divergence"] = value
        rows["full_divergence_dlse"] = pullback(jnp.ones_like(value))[0]
    elif config.distill_support == "topk":
        topk_logits, topk_indices = jax.lax.top_k(student, config.topk)
        rows.update(topk_logits=topk_logits, topk_indices=topk_indices,
                    teacher_topk_logits=take(teacher, topk_indices))
    return rows


def _row_statistics(config: LossConfig, student_hidden, lm_head, teacher_hidden, teacher_lm_head,
                    tokens) -> dict[str, jax.Array]:
    """Per-token row statistics for all [B, T] tokens, one chunk of positions at a time."""
    batch_size, length, _ = student_hidden.shape
    chunk, count = _chunking(length, config.chunk_size)
    padded = [_pad_time(x, chunk * count - length) for x in (student_hidden, teacher_hidden, tokens)]

    def one_chunk(index):
        student, teacher, chunk_tokens = (
            jax.lax.dynamic_slice_in_dim(x, index * chunk, chunk, axis=1) for x in padded)
        return _chunk_row_statistics(config, student, lm_head, teacher, teacher_lm_head,
                                     chunk_tokens)

    stacked = jax.lax.map(one_chunk, jnp.arange(count))
    return {name: jnp.moveaxis(x, 0, 1).reshape(batch_size, count * chunk, *x.shape[3:])[:, :length]
            for name, x in stacked.items()}


def _token_objective(config: LossConfig, differentiable: dict[str, jax.Array], *,
                    rows: dict[str, jax.Array], batch: LossBatch):
    """The whole objective from per-token row statistics: (loss, (metrics, distill coefficients)).

    Differentiable inputs: lse_student [B, T], token_logit [B, T] (and topk_logits [B, T, k]);
    their gradients are the per-token scalars the backward pass spreads over the vocabulary.
    """
    frozen = jax.lax.stop_gradient
    lse_student = differentiable["lse_student"]
    token_logp = differentiable["token_logit"] - lse_student
    teacher_token_logp = rows["teacher_token_logit"] - rows["lse_teacher"]
    mask = batch.mask.astype(_F32)
    distill_mask = mask if batch.distill_mask is None else (
        mask * batch.distill_mask.astype(_F32)[:, None])
    credit = jnp.ones_like(mask) if batch.credit is None else batch.credit.astype(_F32)

    if config.distill_support == "sampled_token":
        gap = frozen(token_logp - teacher_token_logp)
        token_divergence = gap + gap * (token_logp - frozen(token_logp))  # value gap, REINFORCE grad
    elif config.distill_support == "full":
        token_divergence = rows["full_divergence"] + rows["full_divergence_dlse"] * (
            lse_student - frozen(lse_student))
    else:
        support_student = divergence.topk_categories(
            differentiable["topk_logits"] - lse_student[..., None], config.topk_tail)
        support_teacher = divergence.topk_categories(
            rows["teacher_topk_logits"] - rows["lse_teacher"][..., None], config.topk_tail)
        token_divergence = jnp.sum(divergence.alpha_divergence_terms(
            support_student, support_teacher, config.distill_alpha), axis=-1)

    distill_tokens = distill_mask.sum()
    weight = credit * distill_mask / jnp.maximum(distill_tokens, 1.0)
    if config.distill_is_clip is not None:
        is_weight = policy.importance_weight(token_logp, batch.old_logprobs, config.distill_is_clip)
        weight = weight * is_weight
    distill_loss = jnp.sum(weight * token_divergence)
    loss = distill_loss

    metrics = {"loss/distill": distill_loss,
               "distill/div_mean": _masked_mean(token_divergence, distill_mask),
               "distill/div_max": _masked_max(token_divergence, distill_mask),
               "distill/logp_gap": _masked_mean(token_logp - teacher_token_logp, distill_mask),
               "policy/entropy": _masked_mean(rows["entropy"], mask),
               "credit/weight_mean": _masked_mean(credit, distill_mask),
               "credit/weight_std": jnp.sqrt(_masked_mean(jnp.square(
                   credit - _masked_mean(credit, distill_mask)), distill_mask)),
               "credit/weight_max": _masked_max(credit, distill_mask),
               "credit/weight_min": -_masked_max(-credit, distill_mask),
               "tokens/response": mask.sum(), "tokens/distill": distill_tokens}
    if batch.blamed is not None:
        metrics.update(_blame_diagnostics(batch.blamed.astype(_F32) * distill_mask, distill_mask,
                                          credit, token_logp - teacher_token_logp))
    if config.distill_is_clip is not None:
        metrics["distill/is_clip_frac"] = _masked_mean(
            (is_weight >= config.distill_is_clip).astype(_F32), distill_mask)
    if config.uses_grpo:
        grpo_loss, grpo_metrics = _grpo(config, token_logp, mask, batch)
        loss = loss + config.beta * grpo_loss
        metrics.update(grpo_metrics)
    metrics["loss/total"] = loss
    return loss, (jax.tree.map(frozen, metrics), frozen(weight))


def _blame_diagnostics(blamed: jax.Array, distill_mask: jax.Array, credit: jax.Array,
                       gap: jax.Array) -> dict[str, jax.Array]:
    """Where the signal lands: the student - teacher log-prob gap of the sampled tokens on blamed
    statements and elsewhere (a teacher that read the feedback should disagree more on the
    blamed ones), and the share of the credit mass on them."""
    rest = distill_mask - blamed
    return {"diag/logp_gap_blamed": _masked_mean(gap, blamed),
            "diag/logp_gap_rest": _masked_mean(gap, rest),
            "diag/blamed_token_frac": blamed.sum() / jnp.maximum(distill_mask.sum(), 1.0),
            "diag/credit_mass_blamed": jnp.sum(credit * blamed) / jnp.maximum(
                jnp.sum(credit * distill_mask), 1e-9)}


def _grpo(config: LossConfig, token_logp, mask, batch: LossBatch):
    """beta-free GRPO loss (clipped surrogate + optional k3 to a reference) and its metrics."""
    metrics = {}
    if config.advantage == "given":
        advantages = batch.advantages.astype(_F32)
        policy_mask = mask
    else:
        advantages, flat = policy.group_advantages(
            batch.rewards, batch.group_ids, normalise_std=config.advantage == "mean_std",
            eps=config.advantage_eps)
        metrics["grpo/flat_group_frac"] = flat.astype(_F32).mean()
        policy_mask = mask * (1.0 - flat.astype(_F32))[:, None] if config.drop_flat_groups else mask
    if config.aggregation == "token":
        aggregation = policy_mask / jnp.maximum(policy_mask.sum(), 1.0)
    else:
        per_sequence = policy_mask.sum(axis=1)
        sequences = jnp.maximum((per_sequence > 0).sum(), 1)
        aggregation = policy_mask / jnp.maximum(per_sequence, 1.0)[:, None] / sequences
    surrogate, ratio, clipped = policy.clipped_surrogate(
        token_logp, batch.old_logprobs, advantages[:, None],
        clip_low=config.clip_low, clip_high=config.clip_high)
    per_token = surrogate
    if config.ref_kl_coef > 0:
        ref_kl = policy.k3_kl(token_logp, batch.ref_logprobs)
        per_token = per_token + config.ref_kl_coef * ref_kl
        metrics["grpo/ref_kl"] = _masked_mean(ref_kl, policy_mask)
    metrics.update({"loss/grpo": jnp.sum(aggregation * per_token),
                    "grpo/clip_frac": _masked_mean(clipped.astype(_F32), policy_mask),
                    "grpo/ratio_mean": _masked_mean(ratio, policy_mask),
                    "grpo/advantage_abs_mean": jnp.abs(advantages).mean()})
    return metrics["loss/grpo"], metrics


# ---------------------------------------------------------------------------- backward pass


def _head_backward(config: LossConfig, res: _Residuals, loss_cotangent: jax.Array):
    """d loss / d hidden [B, T, H] and d loss / d lm_head [H, V], vocabulary tile by tile."""
    batch_size, length, hidden = res.student_hidden.shape
    vocab = res.lm_head.shape[1]
    tile = min(config.vocab_chunk_size, vocab)
    # Same block budget as the forward's [B, chunk_size, V]: more positions per narrower tile.
    chunk, count = _chunking(length, config.chunk_size * max(1, vocab // tile))
    pad = chunk * count - length
    per_token = {name: _pad_time(getattr(res, name), pad) for name in (
        "student_hidden", "teacher_hidden", "lse_student", "lse_teacher", "lse_cotangent",
        "indices", "index_cotangents") + (("phi_coef",) if res.phi_coef is not None else ())}
    scale = loss_cotangent.astype(_F32) / config.temperature
    full_tiles, remainder = divmod(vocab, tile)

    def vocab_tile(start, size, carry):
        d_head, d_hidden = carry
        head = jax.lax.dynamic_slice_in_dim(res.lm_head, start, size, axis=1)
        teacher_head = jax.lax.dynamic_slice_in_dim(res.teacher_lm_head, start, size, axis=1)

        def position_chunk(index, acc):
            d_head_tile, d_hidden = acc
            sliced = {name: jax.lax.dynamic_slice_in_dim(x, index * chunk, chunk, axis=1)
                      for name, x in per_token.items()}
            d_logits = _logit_cotangent_tile(config, sliced, head, teacher_head, start) * scale
            hidden_in = sliced["student_hidden"]
            d_head_tile = d_head_tile + jnp.einsum("bch,bcv->hv", hidden_in, d_logits,
                                                   preferred_element_type=_F32)
            d_chunk = jnp.einsum("bcv,hv->bch", d_logits, head, preferred_element_type=_F32)
            previous = jax.lax.dynamic_slice_in_dim(d_hidden, index * chunk, chunk, axis=1)
            d_hidden = jax.lax.dynamic_update_slice_in_dim(d_hidden, previous + d_chunk,
                                                           index * chunk, axis=1)
            return d_head_tile, d_hidden

        d_head_tile, d_hidden = jax.lax.fori_loop(
            0, count, position_chunk, (jnp.zeros((hidden, size), _F32), d_hidden))
        d_head = jax.lax.dynamic_update_slice_in_dim(d_head, d_head_tile.astype(d_head.dtype),
                                                     start, axis=1)
        return d_head, d_hidden

    carry = (jnp.zeros_like(res.lm_head), jnp.zeros((batch_size, chunk * count, hidden), _F32))
    carry = jax.lax.fori_loop(0, full_tiles, lambda j, c: vocab_tile(j * tile, tile, c), carry)
    if remainder:
        carry = vocab_tile(full_tiles * tile, remainder, carry)
    d_head, d_hidden = carry
    return d_hidden[:, :length].astype(res.student_hidden.dtype), d_head


def _logit_cotangent_tile(config: LossConfig, rows: dict[str, jax.Array], head, teacher_head,
                          start) -> jax.Array:
    """d loss / d student logits on one [B, C, tile] block (before the loss cotangent)."""
    student = _logits(rows["student_hidden"], head, config.temperature)
    student_logp = student - rows["lse_student"][..., None]
    d_logits = rows["lse_cotangent"][..., None] * jnp.exp(student_logp)
    if "phi_coef" in rows:
        teacher_logp = (_logits(rows["teacher_hidden"], teacher_head, config.temperature)
                        - rows["lse_teacher"][..., None])
        direct = jax.grad(lambda logp: jnp.sum(divergence.alpha_divergence_terms(
            logp, teacher_logp, config.distill_alpha)))(student_logp)
        d_logits = d_logits + rows["phi_coef"][..., None] * direct
    return _add_at_columns(d_logits, rows["indices"] - start, rows["index_cotangents"])


def _add_at_columns(block: jax.Array, columns: jax.Array, values: jax.Array) -> jax.Array:
    """block[b, c, columns[b, c, i]] += values[b, c, i], skipping columns outside the block."""
    size = block.shape[-1]
    inside = (columns >= 0) & (columns < size)
    columns = jnp.where(inside, columns, size)  # out of range -> dropped, never wrapped
    rows_b = jnp.arange(block.shape[0])[:, None, None]
    rows_c = jnp.arange(block.shape[1])[None, :, None]
    return block.at[rows_b, rows_c, columns].add(values, mode="drop")


# ---------------------------------------------------------------------------------- helpers


def _chunking(length: int, chunk_size: int) -> tuple[int, int]:
    chunk = min(chunk_size, length)
    return chunk, -(-length // chunk)


def _pad_time(x: jax.Array, pad: int) -> jax.Array:
    if pad == 0:
        return x
    return jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(values * mask) / jnp.maximum(mask.sum(), 1.0)


def _masked_max(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Max over masked entries; 0 when nothing is masked in (a metric, never -inf)."""
    return jnp.where(mask.sum() > 0, jnp.max(jnp.where(mask > 0, values, -jnp.inf)), 0.0)


def _check_arrays(student_hidden, teacher_hidden, lm_head, teacher_lm_head, batch: LossBatch,
                  config: LossConfig) -> None:
    if student_hidden.ndim != 3:
        raise ValueError(f"student_hidden must be [batch, time, hidden], got {student_hidden.shape}")
    if teacher_hidden.shape != student_hidden.shape:
        raise ValueError(f"teacher_hidden {teacher_hidden.shape} must match student_hidden "
                         f"{student_hidden.shape}: slice both to the aligned response positions")
    heads: list[tuple[str, Any]] = [("lm_head", lm_head), ("teacher_lm_head", teacher_lm_head)]
    for name, head in heads:
        if head is not None and (head.ndim != 2 or head.shape[0] != student_hidden.shape[2]):
            raise ValueError(f"{name} must be [hidden={student_hidden.shape[2]}, vocab], got "
                             f"{head.shape} (pass the embedding transposed when tied)")
    if teacher_lm_head is not None and teacher_lm_head.shape != lm_head.shape:
        raise ValueError(f"teacher_lm_head {teacher_lm_head.shape} must match lm_head {lm_head.shape}")
    if config.distill_support == "topk" and config.topk > lm_head.shape[1]:
        raise ValueError(f"LossConfig.topk = {config.topk} exceeds the vocabulary ({lm_head.shape[1]})")
    batch.check(config, student_hidden.shape[0], student_hidden.shape[1])
