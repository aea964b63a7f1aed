"""Ablation: rollouts whose code failed to run get no distillation term (GRPO reward only)."""
from configs import chart_8b


def get_config():
    c = chart_8b.get_config()
    c.teacher.failed_exec_path = False
    return c
