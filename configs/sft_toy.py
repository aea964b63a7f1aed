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
    c.model.checkpoint = ""  # from random weights: this run is what makes the warm start
    for section in ("rollout", "credit", "teacher", "loss"):  # Visual-SDPO's own sections
        del c[section]
    c.sft = dict(
        examples_per_step=8,
        revision_share=0.5,          # half the examples teach revising with feedback
        careless_probability=0.35,   # the careless prior, per lever
        # Examples packed end to end (sdpo_jax.sequences.pack_rows): a plain one takes ~330
        # tokens, a revision ~490 (at most 520 and 830 in 320 examples); 8 fill 4 rows of 1024,
        # one example in ~27 steps finds no room and sits out (sft/dropped_examples).
        rows=4, row_tokens=1024,
        chunk_size=1024)  # one cross-entropy chunk per row (vocabulary 2048)
    # Revision prompts hold no demonstration: the task, the render and the defect table or log.
    c.context.max_prompt_tokens = 576
    # Queries in chunks of 256: a packed row's [1024, 1024] float32 scores per head were the
    # step's largest cost on CPU (2.2 vs 2.7 s per step, same examples).
    c.model.attention_query_chunk = 256
    c.eval.update(dict(max_prompt_tokens=240, max_new_tokens=336))
    c.optim.update(dict(learning_rate=2e-3, warmup_steps=20, end_lr_ratio=0.05))
    c.train.update(dict(num_steps=560, checkpoint_every=70, keep_checkpoints=2, plot_every=30))
    c.eval.update(dict(every=140, count=32))
    return c
