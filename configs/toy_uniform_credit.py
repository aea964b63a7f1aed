"""Learning-signal arm.
Uniform credit (plain SDPO on visual feedback): every response token weighted 1."""
from configs import toy_sdpo


def get_config():
    c = toy_sdpo.get_config()
    c.credit.alpha = 1.0
    return c
