"""LossConfig: every knob of the distillation + GRPO objective, read and validated in one place.

A run's config.loss becomes a `LossConfig` through sdpo_jax.run_config (every key required,
unknown ones refused); bad values fail here with an error that names the field and the fix, so a
typo in a pod config fails at start-up. The defaults serve direct library use (tests,
benchmarks); a run takes every value from its config file. The dataclass is frozen and hashable
because the loss is jitted with it as a static argument.
This module holds data and validation only: it never computes a loss.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

DISTILL_SUPPORTS = ("sampled_token", "full", "topk")
ADVANTAGE_MODES = ("mean_std", "mean", "given")
AGGREGATIONS = ("token", "sequence")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """L = sum_t w_t m_t IS_t d_t / sum_t m_t + beta * L_GRPO (token-mean over the whole batch).

    Distillation (teacher || student, teacher under stop-gradient):
      distill_support: "sampled_token" (reverse KL estimated on the realised token:
        value log p_s(y) - log p_T(y), gradient the REINFORCE one (log p_s - log p_T) grad log p_s;
        needs distill_alpha = 1), "full" (the whole vocabulary) or "topk" (the student's top-k
        tokens, plus a tail bucket log(1 - sum of top-k probs) or renormalised without it).
      distill_alpha: 0 forward KL(T||S), 1 reverse KL(S||T), in between the generalised JSD
        alpha KL(T||M) + (1 - alpha) KL(S||M) with M = (1 - alpha) S + alpha T (SDPO's convention).
      distill_is_clip: None, or c > 0: each token's divergence is scaled by the detached weight
        min(exp(log p_s(y) - log p_old(y)), c) for slightly off-policy rollouts.
    GRPO (beta = 0 turns it off and then needs no old log-probs or rewards):
      advantage: "mean_std" (r - mean) / (std + eps) within each group (unbiased std; flat groups
        and singletons get 0), "mean" r - mean, or "given" (the caller passes advantages).
      clip_low / clip_high: the ratio exp(lp - lp_old) is clipped to [1 - clip_low, 1 + clip_high].
      aggregation: "token" (mean over all response tokens of the batch) or "sequence" (mean over
        sequences of each sequence's token mean).
      drop_flat_groups: leave zero-variance groups out of the GRPO mean (they carry no advantage).
      ref_kl_coef: weight of the k3 estimator exp(lp_ref - lp) - (lp_ref - lp) - 1 to a reference.
    Both:
      temperature: logits are divided by it (use the sampler's, so lp matches lp_old).
      chunk_size: response positions per chunk. The forward holds a few (about 9 for "full")
        float32 arrays of batch * chunk_size * vocab; the backward arrays of the same size.
      vocab_chunk_size: vocabulary columns per tile of the LM-head gradient pass (the backward
        takes chunk_size * vocab // vocab_chunk_size positions per block to keep that size).
    """

    distill_support: str = "full"
    distill_alpha: float = 0.5
    topk: int = 100
    topk_tail: bool = True
    distill_is_clip: float | None = None
    beta: float = 0.0
    advantage: str = "mean_std"
    advantage_eps: float = 1e-6
    clip_low: float = 0.2
    clip_high: float = 0.28
    aggregation: str = "token"
    drop_flat_groups: bool = False
    ref_kl_coef: float = 0.0
    temperature: float = 1.0
    chunk_size: int = 32
    vocab_chunk_size: int = 4096

    def __post_init__(self):
        _choice("distill_support", self.distill_support, DISTILL_SUPPORTS)
        _choice("advantage", self.advantage, ADVANTAGE_MODES)
        _choice("aggregation", self.aggregation, AGGREGATIONS)
        if not 0.0 <= self.distill_alpha <= 1.0:
            _fail("distill_alpha", self.distill_alpha, "a number in [0, 1] (0 forward KL, 1 reverse KL)")
        if self.distill_support == "sampled_token" and self.distill_alpha != 1.0:
            _fail("distill_alpha", self.distill_alpha, "1.0 with distill_support='sampled_token' (the "
                  "realised-token estimator only exists for reverse KL); or use 'full'/'topk'")
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 1:
            _fail("topk", self.topk, "a positive integer (SDPO uses 100, 20 for code feedback)")
        if self.distill_is_clip is not None and not _positive(self.distill_is_clip):
            _fail("distill_is_clip", self.distill_is_clip, "None or a positive number (SDPO uses 2.0)")
        for name in ("beta", "ref_kl_coef", "clip_low", "clip_high"):
            if not _finite(getattr(self, name)) or getattr(self, name) < 0:
                _fail(name, getattr(self, name), "a finite number >= 0")
        if self.clip_low >= 1.0:
            _fail("clip_low", self.clip_low, "a number in [0, 1) (the ratio's floor is 1 - clip_low)")
        for name in ("advantage_eps", "temperature"):
            if not _positive(getattr(self, name)):
                _fail(name, getattr(self, name), "a finite number > 0")
        for name in ("chunk_size", "vocab_chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(name, value, "a positive integer")

    @property
    def uses_grpo(self) -> bool:
        return self.beta > 0.0



def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        _fail(name, value, f"one of {options}")


def _fail(name: str, value: Any, expected: str) -> None:
    raise ValueError(f"LossConfig.{name} = {value!r} is invalid: expected {expected}")
