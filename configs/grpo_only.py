"""Ablation: GRPO with the visual reward only (no self-distillation), on the chart_8b setting."""
from configs import chart_8b


def get_config():
    c = chart_8b.get_config()
    c.teacher.distill = False
    c.loss.beta = 1.0
    return c
