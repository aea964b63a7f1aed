"""The learning-signal experiment's Visual-SDPO arm (benchmarks/learning_signal.py): the toy
model from the bundled warm start (configs/default.py's; --config.model.checkpoint=DIR for
another) trained on the synthetic chart tasks and evaluated on 200 held-out test tasks. Every
other arm (configs/toy_*.py) is this file with one knob changed.

    python -m sdpo_jax.main --config=configs/toy_sdpo.py --workdir=runs/toy_sdpo
"""
from configs import default


def get_config():
    c = default.get_config()
    c.train.update(dict(num_steps=60, checkpoint_every=10, plot_every=10))
    c.eval.update(dict(every=20, path="synthetic:test", count=200))
    return c
