"""Ablation: plain SDPO, every response token weighted 1 (no visual-grounded credit)."""
from configs import chart_8b


def get_config():
    c = chart_8b.get_config()
    c.credit.alpha = 1.0
    return c
