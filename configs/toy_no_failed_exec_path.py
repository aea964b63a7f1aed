"""Learning-signal arm.
No failed-execution path: rollouts whose code failed carry no distillation term."""
from configs import toy_sdpo


def get_config():
    c = toy_sdpo.get_config()
    c.teacher.failed_exec_path = False
    return c
