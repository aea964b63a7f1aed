"""Learning-signal arm.
Text-only feedback: the teacher reads the defect table and the error log, not
the render."""
from configs import toy_sdpo


def get_config():
    c = toy_sdpo.get_config()
    c.context.show_render = False
    return c
