"""Learning-signal arm.
OPSD (the paper's distillation baseline): the teacher is privileged with the task's
reference program instead of visual feedback."""
from configs import toy_sdpo


def get_config():
    c = toy_sdpo.get_config()
    c.context.show_reference = True
    return c
