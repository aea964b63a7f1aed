"""Supervised warm start of the toy model on the synthetic chart tasks (config.mode = "sft").

Plain examples teach the task -> a program from the careless prior (each defect lever careless
with `careless_probability`); revision examples teach the task + the privileged context of a
careless attempt, as the teacher sees it -> the clean program (sdpo_jax.sft). The exported
policy (WORKDIR/model) is the starting point of the RL configs:
--config.model.checkpoint=WORKDIR/model.

    python -m sdpo_jax.main --config=configs/sft_toy.py --workdir=runs/sft_toy
    python -m sdpo_jax.evaluate --config=configs/sft_toy.py --checkpoint=runs/sft_toy/model \
        --data=synthetic:test:200 --out=runs/sft_toy/test --with_feedback
Runtime: see the README's warm-start row (2 CPU cores).
"""
from configs import default


def get_config():
    c = default.get_config()
    c.mode = "sft"
    for section in ("rollout", "credit", "teacher", "loss"):  # Visual-SDPO's own sections
        del c[section]
    c.sft = dict(
        examples_per_step=8,
        revision_share=0.5,          # half the examples teach revising with feedback
        careless_probability=0.35,   # the careless prior, per lever
        # Budgets just above the generator's longest (5000 tasks: prompt 233, careless program
        # 326 tokens): padding costs time on every row. One cross-entropy chunk (vocabulary 2048).
        max_prompt_tokens=240, max_response_tokens=336,
        chunk_size=336)
    # Revision prompts hold no demonstration: the task, the render and the defect table or log.
    c.context.max_prompt_tokens = 576
    c.eval.update(dict(max_prompt_tokens=240, max_new_tokens=336))
    c.optim.update(dict(learning_rate=2e-3, warmup_steps=20, end_lr_ratio=0.05))
    c.train.update(dict(num_steps=480, checkpoint_every=60, keep_checkpoints=2, plot_every=30))
    c.eval.update(dict(every=120, count=32))
    return c
