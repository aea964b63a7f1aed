"""Learning-signal arm.
GRPO only: no teacher, the same reward, rollouts, optimizer and step budget. With
distillation off, beta only rescales the gradient (Adam normalises it away), so the learning rate
is what benchmarks/learning_signal.py sweeps for a fair baseline."""
from configs import toy_sdpo


def get_config():
    c = toy_sdpo.get_config()
    c.teacher.distill = False
    return c
