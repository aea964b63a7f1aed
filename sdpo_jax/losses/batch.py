"""LossBatch: the per-token and per-sequence arrays the loss reads besides the hidden states.

Shapes are [B, T] for tokens and [B] for sequences, where position t of the response holds the
token that the hidden state at t predicts (the caller aligns student and teacher sequences, whose
prompts differ, on the SAME response tokens). `check` says which field is missing or misshapen
for a given LossConfig before anything is traced. A registered pytree, so it passes through jit.
"""
from __future__ import annotations

import dataclasses

import jax

from sdpo_jax.losses.config import LossConfig


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossBatch:
    """Response tokens, masks, credit weights and the sampler's / reference's numbers.

    tokens: [B, T] int, the sampled response tokens.
    mask: [B, T], 1 on response tokens, 0 on prompt and padding (no loss there).
    credit: [B, T] per-token credit weights w_t (None: all 1, plain SDPO).
    old_logprobs: [B, T] the sampler's log-probs of `tokens` (GRPO ratio, IS clip).
    rewards, group_ids: [B] sequence rewards and prompt-group ids (GRPO advantages); a rollout
      whose code failed to execute stays in: it gets its (executability) reward and keeps its
      distillation term, since its teacher saw the error.
    advantages: [B] precomputed advantages (LossConfig.advantage == "given").
    ref_logprobs: [B, T] a reference policy's log-probs of `tokens` (KL penalty).
    distill_mask: [B] 1 for sequences whose teacher has feedback or a demonstration (None: all).
    blamed: [B, T] 1 on tokens of statements the environment blamed (diagnostics only: the
      teacher - student gap and the credit mass there, against the rest).
    """

    tokens: jax.Array
    mask: jax.Array
    credit: jax.Array | None = None
    old_logprobs: jax.Array | None = None
    rewards: jax.Array | None = None
    group_ids: jax.Array | None = None
    advantages: jax.Array | None = None
    ref_logprobs: jax.Array | None = None
    distill_mask: jax.Array | None = None
    blamed: jax.Array | None = None

    def check(self, config: LossConfig, batch_size: int, length: int) -> None:
        """Raise a ValueError naming the field when the batch cannot serve this config."""
        needs = {
            "old_logprobs": config.uses_grpo or config.distill_is_clip is not None,
            "rewards": config.uses_grpo and config.advantage != "given",
            "group_ids": config.uses_grpo and config.advantage != "given",
            "advantages": config.uses_grpo and config.advantage == "given",
            "ref_logprobs": config.uses_grpo and config.ref_kl_coef > 0,
        }
        for name, needed in needs.items():
            if needed and getattr(self, name) is None:
                raise ValueError(f"LossBatch.{name} is required by this LossConfig "
                                 f"(beta={config.beta}, advantage={config.advantage!r}, "
                                 f"distill_is_clip={config.distill_is_clip}, "
                                 f"ref_kl_coef={config.ref_kl_coef}); pass it or change the config")
        per_token = ("tokens", "mask", "credit", "old_logprobs", "ref_logprobs", "blamed")
        per_sequence = ("rewards", "group_ids", "advantages", "distill_mask")
        for names, shape in ((per_token, (batch_size, length)), (per_sequence, (batch_size,))):
            for name in names:
                value = getattr(self, name)
                if value is not None and tuple(value.shape) != shape:
                    raise ValueError(f"LossBatch.{name} has shape {tuple(value.shape)}, expected "
                                     f"{shape} to match hidden states [batch={batch_size}, "
                                     f"time={length}, hidden]")
