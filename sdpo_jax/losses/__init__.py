"""Losses of Visual-SDPO: credit-weighted self-distillation + beta * GRPO, fused and chunked.

`sdpo_loss(student_hidden, teacher_hidden, lm_head, LossBatch(...), LossConfig(...))` is what the
trainer calls inside its jitted step; `reference_loss` is the naive full-logits formulation the
fused one is tested against (and the baseline of benchmarks/loss_memory.py), never for training.
"""
from sdpo_jax.losses.batch import LossBatch
from sdpo_jax.losses.config import LossConfig
from sdpo_jax.losses.fused import sdpo_loss
from sdpo_jax.losses.reference import reference_loss

__all__ = ["LossBatch", "LossConfig", "reference_loss", "sdpo_loss"]
