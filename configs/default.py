"""The tiny CPU default, and the one source of every run setting's default.

Every key below is required by sdpo_jax.run_config (the other configs build on this file and
change what they name), so what a run does is what its config file says. Sections by mode:
common (seed, mode, model, mesh, data, env, context, optim, train, eval), Visual-SDPO's
(rollout, credit, teacher, loss) and the warm start's (sft, see configs/sft_toy.py).

The main job: the toy Qwen3-VL (configs/model_sizes.py "toy", the bundled sentencepiece
tokenizer) from its bundled warm start (models/checkpoints/toy_warm_start: the supervised warm
start of configs/sft_toy.py, whose programs run about half the time and carry real defects),
trained by Visual-SDPO on the built-in synthetic chart tasks (sdpo_jax.synthetic: the instruction
states the data), rendered and judged by the real chart environment, and evaluated on 100
held-out validation tasks before, halfway and after; nothing outside the repository is read.
`--config.model.checkpoint=` starts from random weights instead (the code then rarely runs, and
the signal flows mostly through the failed-execution path). Leaves checkpoints, metrics.jsonl,
TensorBoard events, plots.png, evaluations and the exported policy in --workdir.

    python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny
Runtime: see the README's main-job paragraph (2 CPU cores).
"""
import os

import ml_collections

# The bundled warm start, found from this file so the job runs from any working directory.
WARM_START = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                          "checkpoints", "toy_warm_start")


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.mode = "sdpo"  # sdpo: Visual-SDPO; sft: supervised warm start (configs/sft_toy.py)

    # Model: a size from configs/model_sizes.py (random weights), or a local checkpoint folder
    # (HF or Flax; a run's exported workdir/model) in `checkpoint`; `tokenizer`: "qwen3", a
    # bundled sentencepiece model ("synthetic_charts", the toy size's) or a .model path;
    # `overrides` change the size's text_config / vision_config; attention_query_chunk > 0
    # computes attention that many queries at a time (long prompts); attention_impl "splash"
    # runs the text decoder's attention (training, no KV cache) as the fused Pallas kernel on
    # TPU backends (XLA elsewhere), "xla" always as XLA's masked softmax.
    c.model = ml_collections.ConfigDict(dict(
        size="toy", checkpoint=WARM_START, tokenizer="synthetic_charts", param_dtype="float32",
        dtype="float32", scan_layers=False, remat="none", attention_query_chunk=0,
        attention_impl="xla", overrides={}))
    # Mesh axis sizes; -1 takes the remaining devices.
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))

    # Sources: JSONL files (a bare name is read from the data folder, see README "Data") or
    # generated synthetic tasks (synthetic:<split>[:<count>]), in a format of
    # envs.registry.FORMATS, mixed by weight. target_images: show the student the render of the
    # reference (ChartMimic-style "reproduce this image"); off for synthetic tasks, whose
    # instruction states the data.
    c.data = ml_collections.ConfigDict(dict(
        sources=[dict(path="synthetic:train", format="synthetic_chart", weight=1.0)],
        target_images=False,
        image_max_pixels=128 * 128,   # images are resized below this (tokens = pixels/1024)
        image_min_pixels=64 * 64,
    ))

    c.rollout = ml_collections.ConfigDict(dict(
        prompts_per_step=4,
        group_size=4,           # G rollouts per prompt: the GRPO group
        max_new_tokens=384, max_prompt_tokens=256,
        temperature=1.0,        # also the loss's temperature (log-probs must match the sampler's)
        top_k=0, top_p=1.0,
        max_off_policy_lag=1,   # 1: sample batch k+1 while batch k renders; 0: strictly on-policy
    ))

    # Env workers; one settings dict per domain of envs.registry (empty: the env's own defaults,
    # e.g. chart=dict(reward=dict(fidelity=0.6)), see envs/<domain>/env.py).
    c.env = ml_collections.ConfigDict(dict(
        num_workers=2, timeout_s=30.0, chart={}, web={}, slide_pptx={}, slide_html={}))

    # What the teacher sees besides the task (sdpo_jax.teacher_context): the render, the defect
    # table with its lines or the error log, a successful sibling (or, for the OPSD baseline, the
    # reference program instead); the same context prompts the
    # warm start's revision examples and the evaluation's second attempts.
    c.context = ml_collections.ConfigDict(dict(
        show_render=True, show_defects=True, show_error=True,
        demonstration=True,    # show a successful sibling rollout to failed ones (SDPO)
        show_reference=False,  # OPSD: the reference program instead of all feedback
        max_defects=12, max_log_chars=1500,
        max_prompt_tokens=1024))

    # Visual-grounded code credit: w_t = 1 + (alpha - 1) * resp(s(t)); a failing statement gets
    # resp error_severity, the statements that built its inputs dependency_severity.
    c.credit = ml_collections.ConfigDict(dict(
        alpha=3.0, normalise="mean", error_severity=1.0, dependency_severity=0.5))

    c.teacher = ml_collections.ConfigDict(dict(
        weights="live",            # live | ema | base
        ema_rate=0.05, ema_every=1,
        distill=True,              # False: GRPO only (no teacher pass; configs/grpo_only.py)
        failed_exec_path=True,     # failed rollouts keep their distillation term
    ))

    # sdpo_jax.losses.LossConfig fields (its temperature is rollout.temperature).
    c.loss = ml_collections.ConfigDict(dict(
        distill_support="full", distill_alpha=1.0, topk=100, topk_tail=True, distill_is_clip=2.0,
        beta=0.1, advantage="mean_std", advantage_eps=1e-6, clip_low=0.2, clip_high=0.28,
        aggregation="token", drop_flat_groups=False, ref_kl_coef=0.0,
        chunk_size=32, vocab_chunk_size=16384))

    # AdamW; the schedule decays over train.num_steps (the last step gets end_lr_ratio * lr).
    # 1e-4 collapses the warm-started toy policy within 20 steps (README "Does the loop make the
    # policy better?"): a fresh Adam takes sign-like steps on noisy 16-rollout gradients.
    c.optim = ml_collections.ConfigDict(dict(
        learning_rate=1e-5, warmup_steps=2, schedule="cosine", end_lr_ratio=0.1,
        weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, max_grad_norm=1.0, grad_accum=1))

    c.train = ml_collections.ConfigDict(dict(
        num_steps=30, checkpoint_every=10, keep_checkpoints=2, plot_every=10))

    # Evaluation on held-out tasks (sdpo_jax.evaluation) before the first step, every `every`
    # steps and after the last (0: never): the first `count` tasks of `path`; greedy at
    # temperature 0; with_feedback also measures the policy revising its own flawed attempts.
    c.eval = ml_collections.ConfigDict(dict(
        every=15, path="synthetic:validation", format="synthetic_chart", count=100, samples=1,
        temperature=0.0, max_new_tokens=384, max_prompt_tokens=256, prompts_per_call=16,
        with_feedback=False))
    return c
