"""The tiny CPU default: what `bash launch/run_local.sh` runs.

A tiny random-weight Qwen3-VL (configs/model_sizes.py "tiny", the real Qwen3 tokenizer) trained by
Visual-SDPO for a few steps on ChartMimic chart-to-code tasks, rendered and judged by the real chart
environment. A random model writes code that rarely runs, so most signal flows through the
failed-execution distillation path (the teacher sees the error); the point is the whole loop, not
a better model. Leaves a checkpoint, metrics.jsonl, TensorBoard events and plots.png in --workdir.

    python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny
Runtime: a few minutes on 2 CPU cores.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    # Model: a size from configs/model_sizes.py, or a local checkpoint folder (HF or Flax).
    c.model = ml_collections.ConfigDict(dict(
        size="tiny", checkpoint="", param_dtype="float32", dtype="float32",
        scan_layers=False, remat="none"))
    # Mesh axis sizes; -1 takes the remaining devices.
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))

    c.data = ml_collections.ConfigDict(dict(
        sources=[dict(path="chartmimic_direct_v1.jsonl", format="chartmimic",
                      weight=1.0)],
        image_max_pixels=128 * 128,   # target images are resized below this (tokens = pixels/1024)
        image_min_pixels=64 * 64,
    ))

    c.rollout = ml_collections.ConfigDict(dict(
        prompts_per_step=2, group_size=4, max_new_tokens=48, max_prompt_tokens=128,
        temperature=1.0, top_k=0, top_p=1.0,
        max_off_policy_lag=1,  # 1: sample batch k+1 while batch k renders; 0: strictly on-policy
    ))

    c.env = ml_collections.ConfigDict(dict(
        num_workers=2, timeout_s=30.0,
        chart=dict(),  # envs.chart.ChartEnvConfig fields (reward weights, limits)
    ))

    # Visual-grounded code credit: w_t = 1 + (alpha - 1) * resp(s(t)).
    c.credit = ml_collections.ConfigDict(dict(alpha=3.0, normalise="mean"))

    c.teacher = ml_collections.ConfigDict(dict(
        weights="live",            # live | ema | base
        max_prompt_tokens=768,     # teacher prompt: task + render + defect table / error log
        ema_rate=0.05, ema_every=1,
        show_render=True, show_defects=True, show_error=True,
        demonstration=True,        # show a successful sibling rollout to failed ones (SDPO)
        failed_exec_path=True,     # failed rollouts keep their distillation term
        distill=True,              # False: GRPO only (no teacher pass; configs/grpo_only.py)
    ))

    # sdpo_jax.losses.LossConfig fields.
    c.loss = ml_collections.ConfigDict(dict(
        distill_support="full", distill_alpha=1.0, distill_is_clip=2.0, beta=0.1,
        advantage="mean_std", clip_low=0.2, clip_high=0.28, aggregation="token",
        chunk_size=32, vocab_chunk_size=16384))

    c.optim = ml_collections.ConfigDict(dict(
        learning_rate=1e-4, warmup_steps=1, schedule="cosine", end_lr_ratio=0.1,
        weight_decay=0.0, b1=0.9, b2=0.999, max_grad_norm=1.0, grad_accum=1))

    c.train = ml_collections.ConfigDict(dict(
        num_steps=4, log_every=1, checkpoint_every=2, keep_checkpoints=2, plot_every=2))
    return c
