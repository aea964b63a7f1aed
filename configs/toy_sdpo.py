"""The learning-signal experiment's Visual-SDPO arm (benchmarks/learning_signal.py): the toy
model from its warm start (configs/sft_toy.py; the sweep sets --config.model.checkpoint) trained
on the synthetic chart tasks and evaluated on 200 held-out test tasks. Every other arm
(configs/toy_*.py) is this file with one knob changed.

    python -m sdpo_jax.main --config=configs/toy_sdpo.py --workdir=runs/toy_sdpo \
        --config.model.checkpoint=runs/sft_toy/model
"""
from configs import default


def get_config():
    c = default.get_config()
    c.rollout.update(dict(prompts_per_step=4, group_size=4))
    # 1e-4 collapses the warm-started toy policy within 20 steps (README "Does the loop make the
    # policy better?"): a fresh Adam takes sign-like steps on noisy 16-rollout gradients.
    c.optim.update(dict(learning_rate=1e-5, warmup_steps=2))
    c.train.update(dict(num_steps=60, checkpoint_every=10, plot_every=10))
    c.eval.update(dict(every=20, path="synthetic:test", count=200))
    return c
