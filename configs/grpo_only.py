"""Ablation: GRPO with the visual reward only (no self-distillation), on the chart_8b setting.

Only the knob changes: with distillation off, GRPO is the only loss term, so its weight beta
only rescales the gradient, which Adam normalises away (up to max_grad_norm clipping and eps):
the learning rate, not beta, is what to tune for a fair GRPO baseline.
"""
from configs import chart_8b


def get_config():
    c = chart_8b.get_config()
    c.teacher.distill = False
    return c
