"""Token choice: the next token of every row from its logits, and that token's log-probs.

This is the policy the sampler runs (and what GRPO's ratio must be measured against), kept apart
from the decode loop so it can be tested directly, with many keys, against known distributions.

The sampled distribution, in transformers' warper order: logits / temperature, then top-k (exactly
k tokens; ties at the k-th logit are cut arbitrarily, where transformers keeps them), then top-p
(the smallest most-likely set whose mass reaches top_p, at least one token). Each row draws one
uniform from its own key and inverts the CDF of that distribution (two-level prefix sums, so a
zero-probability token can never be picked and no per-vocabulary-entry random numbers are needed:
on CPU, Gumbel noise over 152k entries costs more than the LM head). Top-p over the whole
vocabulary finds its probability floor by bisection on the float bits (31 masked sums) instead of
sorting 152k entries; that is still ~31 passes over the vocabulary per step, so pair top-p with a
top-k where speed matters (top-k first leaves the nucleus k sorted entries). Greedy is argmax.

Suppressed tokens (e.g. <|image_pad|>, which would corrupt a teacher-forced forward over the
response) get -inf before anything else, so they are never chosen, greedy or not. The mask is
fused into the passes over the vocabulary. Without top-k/top-p (RL rollouts) a draw takes three
passes: the row maximum, the unnormalised weights exp(z - max), and their block sums, whose
total is also the normaliser; the suppressed ids' share of the full normaliser is read from
their own columns.

For every chosen token three log-probs come back (all float32):
  logprobs          log-softmax of the suppressed, tempered, truncated distribution actually
                    sampled from (the behaviour policy; never -inf: only kept tokens are drawn);
  tempered_logprobs log-softmax(logits / temperature) over the full vocabulary (no truncation):
                    what a teacher-forced forward with `LossConfig.temperature` = temperature gives;
  full_logprobs     log-softmax(logits) over the full vocabulary (temperature 1, no truncation).
Greedy decoding samples from a point mass; there all three equal `full_logprobs` (documented
convention: a log-prob of 0 would carry no information for the trainer).
This module never touches the model or the host.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# Prefix sums run over blocks of this many entries (then over the block totals), which keeps the
# float32 rounding of a 152k-entry CDF near 1e-6 instead of growing with the vocabulary.
_CDF_BLOCK = 1024
# Positive float32 values are ordered like their int32 bit patterns: 31 halvings pin any float
# in [0, 1] exactly.
_BISECTION_STEPS = 31


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How the next token is chosen (Qwen3-VL-Instruct's generation_config by default).

    temperature 0 means greedy (argmax); top_k 0 and top_p 1 switch those filters off.
    """

    temperature: float = 0.7
    top_k: int = 20
    top_p: float = 0.8

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise ValueError(f"temperature={self.temperature} must be a finite number >= 0 "
                             f"(0 = greedy).")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be an integer >= 0 (0 = no top-k filter).")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p={self.top_p} must be in (0, 1] (1 = no nucleus filter).")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@struct.dataclass
class TokenChoice:
    """Chosen tokens [B] int32 and their log-probs [B] float32 (see the module docstring)."""
    tokens: jax.Array
    logprobs: jax.Array
    tempered_logprobs: jax.Array
    full_logprobs: jax.Array


def _nucleus_floor(probs: jax.Array, top_p: float) -> jax.Array:
    """Per row [B], the smallest probability inside the nucleus of probs [B, V].

    A token is in the nucleus iff the mass of the tokens more likely than it is < top_p. That
    mass only falls as the probability rises, so the floor is the smallest x with
    sum(p > x) < top_p, found by bisection over the bit patterns of x.
    """
    def inside(x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.where(probs > x[:, None], probs, 0.0), axis=-1) < top_p

    def halve(_, bounds):
        low, high = bounds
        mid = low + (high - low) // 2
        ok = inside(jax.lax.bitcast_convert_type(mid, jnp.float32))
        return jnp.where(ok, low, mid + 1), jnp.where(ok, mid, high)

    high = jax.lax.bitcast_convert_type(jnp.max(probs, axis=-1), jnp.int32)
    _, high = jax.lax.fori_loop(0, _BISECTION_STEPS, halve, (jnp.zeros_like(high), high))
    return jax.lax.bitcast_convert_type(high, jnp.float32)


def sampling_candidates(logits: jax.Array, sampling: Sampling) -> tuple[jax.Array, jax.Array]:
    """The tokens a non-greedy draw may pick, as (tempered logits [B, K], token ids [B, K]);
    filtered-out entries hold -inf. Top-k first keeps the nucleus to k sorted entries; top-p
    alone keeps the whole vocabulary (K = V) and masks below the nucleus floor."""
    logits = logits.astype(jnp.float32) / sampling.temperature
    vocab = logits.shape[-1]
    if 0 < sampling.top_k < vocab:
        candidates, token_ids = jax.lax.top_k(logits, sampling.top_k)
        if sampling.top_p < 1:  # sorted, most likely first
            probs = jax.nn.softmax(candidates, axis=-1)
            mass_before = jnp.cumsum(probs, axis=-1) - probs
            keep = (mass_before < sampling.top_p).at[:, 0].set(True)
            candidates = jnp.where(keep, candidates, -jnp.inf)
        return candidates, token_ids.astype(jnp.int32)
    token_ids = jnp.broadcast_to(jnp.arange(vocab, dtype=jnp.int32), logits.shape)
    if sampling.top_p < 1:
        probs = jax.nn.softmax(logits, axis=-1)
        logits = jnp.where(probs >= _nucleus_floor(probs, sampling.top_p)[:, None], logits,
                           -jnp.inf)
    return logits, token_ids


def _first_above(cumulative: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
    """Index of the first entry whose running total exceeds target, over the last axis.

    Zero-weight entries add exactly 0 to a running total, so they can never be the first to
    exceed it; if rounding puts target at or past the total, the last positive entry is taken.
    """
    index = jnp.sum(cumulative <= jnp.maximum(target, 0.0)[..., None], axis=-1)
    positive = jnp.arange(weights.shape[-1]) * (weights > 0)
    return jnp.where(index < weights.shape[-1], index, jnp.max(positive, axis=-1))


def _block_size(size: int) -> int:
    """_CDF_BLOCK, or the divisor of size nearest to it within a factor of 2 (1187 for Qwen's
    151936-entry vocabulary): whole blocks need no padded copy of the probabilities."""
    if size <= _CDF_BLOCK:
        return size
    near = sorted(range(_CDF_BLOCK // 2, 2 * _CDF_BLOCK + 1), key=lambda b: abs(b - _CDF_BLOCK))
    return next((b for b in near if size % b == 0), _CDF_BLOCK)


def inverse_cdf(weights: jax.Array, uniforms: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Index drawn from each row of weights [B, K] (>= 0, any positive total) for uniforms
    [B], in proportion to the weights; also returns each row's total weight [B].

    Two levels: choose a block of ~_CDF_BLOCK entries by the prefix sums of the block totals,
    then the entry inside it, so no prefix sum runs over more than ~max(K / _CDF_BLOCK,
    _CDF_BLOCK) terms.
    """
    rows, size = weights.shape
    block = _block_size(size)
    blocks = -(-size // block)
    padded = jnp.pad(weights, ((0, 0), (0, blocks * block - size))).reshape(rows, blocks, block)
    block_mass = padded.sum(axis=-1)
    block_cumulative = jnp.cumsum(block_mass, axis=-1)
    target = uniforms * block_cumulative[:, -1]
    chosen_block = _first_above(block_cumulative, target, block_mass)
    inside = jnp.take_along_axis(padded, chosen_block[:, None, None], axis=1)[:, 0]
    before = jnp.take_along_axis(block_cumulative - block_mass, chosen_block[:, None], axis=1)
    offset = _first_above(jnp.cumsum(inside, axis=-1), target - before[:, 0], inside)
    return chosen_block * block + offset, block_cumulative[:, -1]


def _at(values: jax.Array, index: jax.Array) -> jax.Array:
    """values[b, index[b]] for every row b."""
    return jnp.take_along_axis(values, index[:, None], axis=-1)[:, 0]


def _blocked(vocab: int, suppress: tuple[int, ...]) -> jax.Array | None:
    """A [V] bool constant, True at the suppressed ids (None if none): masking by `where` with it
    fuses into the consumers' passes, where a scatter of -inf would copy the logits."""
    if not suppress:
        return None
    blocked = np.zeros(vocab, bool)
    blocked[list(suppress)] = True
    return jnp.asarray(blocked)


def _draw(z: jax.Array, uniforms: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Index drawn from softmax(z) [B, K] (-inf: never drawn) and logsumexp(z) [B]: the CDF's
    block sums of exp(z - max) are the normaliser too, so no separate pass computes it."""
    top = jnp.max(z, axis=-1)
    choice, mass = inverse_cdf(jnp.exp(z - top[:, None]), uniforms)
    return choice, top + jnp.log(mass)


def choose_tokens(logits: jax.Array, keys: jax.Array, sampling: Sampling,
                  suppress: tuple[int, ...] = ()) -> TokenChoice:
    """Next token per row from float32 logits [B, V], one PRNG key per row (keys [B]); the
    `suppress` ids are never chosen.

    A row's draw depends only on its own logits and key, never on the other rows. Normalisers
    are shared or derived where the distributions coincide (temperature 1, nothing truncated,
    only suppression), since each is a pass over the vocabulary.
    """
    logits = logits.astype(jnp.float32)
    vocab = logits.shape[-1]
    blocked = _blocked(vocab, suppress)
    allowed = logits if blocked is None else jnp.where(blocked, -jnp.inf, logits)
    if sampling.greedy:
        tokens = jnp.argmax(allowed, axis=-1).astype(jnp.int32)
        logprob = _at(logits, tokens) - jax.nn.logsumexp(logits, axis=-1)
        return TokenChoice(tokens=tokens, logprobs=logprob, tempered_logprobs=logprob,
                           full_logprobs=logprob)
    temperature = sampling.temperature
    tempered = logits / temperature
    uniforms = jax.vmap(jax.random.uniform)(keys)
    if 0 < sampling.top_k < vocab or sampling.top_p < 1:
        full_norm = jax.nn.logsumexp(logits, axis=-1)
        tempered_norm = full_norm if temperature == 1 else jax.nn.logsumexp(tempered, -1)
        candidates, token_ids = sampling_candidates(allowed, sampling)
        choice, candidate_norm = _draw(candidates, uniforms)
        tokens = _at(token_ids, choice)
        logprob = _at(candidates, choice) - candidate_norm
    else:
        tokens, allowed_norm = _draw(allowed / temperature, uniforms)
        logprob = _at(tempered, tokens) - allowed_norm
        tempered_norm = allowed_norm if not suppress else jnp.logaddexp(
            allowed_norm, jax.nn.logsumexp(tempered[:, jnp.asarray(suppress, jnp.int32)], -1))
        full_norm = tempered_norm if temperature == 1 else jax.nn.logsumexp(logits, axis=-1)
    return TokenChoice(tokens=tokens, logprobs=logprob,
                       tempered_logprobs=_at(tempered, tokens) - tempered_norm,
                       full_logprobs=_at(logits, tokens) - full_norm)
