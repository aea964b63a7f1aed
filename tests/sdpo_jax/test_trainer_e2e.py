"""End to end through the real chart env: rollouts -> Feedback -> credit + teacher -> loss/grads.

The "rollouts" are scripted replies (a real ChartMimic program, the same program with an injected
defect, and a program that crashes), tokenised by the real tokenizer, so the test knows what the
env must find; everything after that is the trainer's real path on a tiny random Qwen3-VL.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from envs.eval.chart_inject import INJECTIONS, inject
from envs.registry import make_env
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.processor import ImageProcessor, ImageProcessorConfig, Qwen3VLProcessor
from sdpo_jax.data import Source, load_tasks
from sdpo_jax.losses import LossConfig
from sdpo_jax.model_loading import size_config
from sdpo_jax.replies import read_replies
from sdpo_jax.rollout_batch import Rows, build_train_batch
from sdpo_jax.sequences import Shapes
from sdpo_jax.teacher_context import FEEDBACK_HEADER, png_image, student_messages
from sdpo_jax.train_step import loss_and_grads

GROUP = 3


@pytest.fixture(scope="module")
def world(benchmark_file, default_run):
    config = size_config("tiny")
    model = Qwen3VL(config, rngs=nnx.Rngs(0))
    image = ImageProcessorConfig.for_model(config)
    processor = Qwen3VLProcessor(config, image_processor=ImageProcessor(
        dataclasses.replace(image, max_pixels=96 * 96, min_pixels=32 * 32)))
    # bar_5's faint title lands under its legend (anchored above the axes): judged against the
    # legend face it shows through, not the legend's entries (`envs.pixels.behind_text`).
    task = next(t for t in load_tasks(Source(str(benchmark_file("chartmimic_direct_v1.jsonl")),
                                             "chartmimic")) if t.task_id == "bar_5")
    faint = next(i for i in INJECTIONS if i.name == "faint_title")
    injected = inject(task.task_id, task.target, faint)
    replies = [f"```python\n{task.target}```", f"Here it is:\n```python\n{injected.code}```",
               "```python\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
               "ax.bar(labels, [1, 2])\nplt.savefig('out.png')\n```"]
    tok = processor.tokenizer
    ids = [tok.encode(reply) + [tok.special.eos[0]] for reply in replies]
    r = max(len(i) for i in ids)
    tokens = np.zeros((GROUP, r), np.int32)
    for row, row_ids in enumerate(ids):
        tokens[row, :len(row_ids)] = row_ids
    lengths = np.array([len(i) for i in ids])
    read = read_replies(tok, tokens, lengths, np.zeros(GROUP, np.int32), ["python"])
    env = make_env("chart", {})
    try:
        target = env.step(task, task.target)
        feedbacks = [env.step(task, reply.program.code) for reply in read]
    finally:
        env.close()
    image = png_image(target.render_png)
    chat = processor(student_messages(task, image))
    shapes = Shapes(response_length=r, student_prompt_length=len(chat.input_ids) + 4,
                    teacher_prompt_length=2048, slot_patches=36, student_images=1,
                    teacher_images=1 + GROUP)
    rows = Rows(tokens, np.zeros(tokens.shape, np.float32), lengths, read)
    return dict(config=config, model=model, processor=processor, task=task, image=image,
                chat=chat, rows=rows, feedbacks=feedbacks, shapes=shapes, injected=injected,
                run=default_run)


def _batch(world, alpha=4.0, failed_exec_path=True, distill=True):
    run = world["run"]
    context = dataclasses.replace(run.context, max_prompt_tokens=2048)
    return build_train_batch(
        world["processor"], [world["task"]], [world["image"]], [world["chat"]], world["rows"],
        world["feedbacks"], shapes=world["shapes"], context=context, distill=distill,
        failed_exec_path=failed_exec_path,
        credit=dataclasses.replace(run.credit, alpha=alpha))


@pytest.fixture(scope="module")
def grads_fn(world):
    graphdef, params = nnx.split(world["model"], nnx.Param)
    loss = LossConfig(distill_support="full", distill_alpha=1.0, chunk_size=64)

    @jax.jit
    def run(params, student, teacher, batch):
        value, metrics, grads = loss_and_grads(graphdef, params, params, student, teacher, batch,
                                               loss)
        return value, metrics, jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(grads)])
    return lambda b: run(params, b.student, b.teacher, b.loss)


def test_env_feedback_is_what_the_scripted_rollouts_deserve(world):
    clean, faint, crash = world["feedbacks"]
    assert clean.ok and faint.ok and not crash.ok
    assert crash.error is not None and "labels" in crash.error.message
    mutated = world["injected"].lines[0]
    low = [d for d in faint.defects if d.kind == "low_contrast"]
    assert low, f"the faint title must be found; got {[d.kind for d in faint.defects]}"
    assert any(a <= mutated <= b for d in low for a, b in d.lines), \
        f"low-contrast defect must be traced to the injected line {mutated}: {low}"


def test_teacher_context_holds_render_defect_table_and_error(world):
    batch = _batch(world)
    tok = world["processor"].tokenizer
    texts = [tok.decode(row[mask]) for row, mask in zip(batch.teacher.input_ids,
                                                        batch.teacher.mask)]
    image_pad = world["config"].image_token_id
    images = [int(np.sum(np.diff(np.r_[0, (row == image_pad).astype(int)]) == 1))
              for row in batch.teacher.input_ids]
    assert images[:2] == [2, 2] and images[2] == 1, \
        f"ok rollouts' teachers see target + render, the crash only the target; got {images}"
    assert all(FEEDBACK_HEADER in t for t in texts)
    assert "low_contrast" in texts[1] and "| lines |" in texts[1]
    assert "NameError" in texts[2] and "labels" in texts[2]
    student_texts = [tok.decode(row[mask]) for row, mask in zip(batch.student.input_ids,
                                                                batch.student.mask)]
    assert all(FEEDBACK_HEADER not in t for t in student_texts), "the student never sees feedback"


def test_credit_weights_amplify_the_injected_line_and_reach_the_gradient(world, grads_fn):
    batch = _batch(world)
    weights = batch.loss.credit[1][batch.loss.mask[1] > 0]
    assert weights.max() > 1.5 * np.median(weights), "the defect's statement must be amplified"
    uniform = _batch(world, alpha=1.0)
    np.testing.assert_allclose(uniform.loss.credit[uniform.loss.mask > 0], 1.0)
    loss_a, metrics, grads_a = grads_fn(batch)
    loss_b, _, grads_b = grads_fn(uniform)
    assert np.isfinite(float(loss_a)) and np.isfinite(np.asarray(grads_a)).all()
    assert float(jnp.abs(grads_a - grads_b).max()) > 1e-6 * float(jnp.abs(grads_b).max()), \
        "changing only the credit weights must change the gradient"
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_failed_execution_still_teaches_through_distillation(world, grads_fn):
    batch = _batch(world)
    only_crash = dataclasses.replace(batch.loss, mask=batch.loss.mask * np.array([[0], [0], [1]]))
    _, _, grads = grads_fn(dataclasses.replace(batch, loss=only_crash))
    assert float(jnp.abs(grads).max()) > 0, "the failed rollout's distillation term gives signal"
    assert batch.loss.distill_mask[2] == 1 and batch.loss.rewards[2] == 0.0
    off = _batch(world, failed_exec_path=False)
    assert off.loss.distill_mask.tolist() == [1.0, 1.0, 0.0]
    off_crash = dataclasses.replace(off.loss, mask=off.loss.mask * np.array([[0], [0], [1]]))
    _, _, grads_off = grads_fn(dataclasses.replace(off, loss=off_crash))
    assert float(jnp.abs(grads_off).max()) == 0.0, "ablation: no failed-exec path, no signal"


def test_grpo_only_ablation_builds_no_teacher_prompts(world):
    grpo = _batch(world, distill=False)
    assert grpo.loss.distill_mask.tolist() == [0.0] * GROUP
    assert grpo.teacher is grpo.student, "no teacher prompts are built for a step that skips them"
    np.testing.assert_array_equal(grpo.loss.credit, _batch(world).loss.credit)


@pytest.mark.slow
def test_grpo_only_ablation_skips_the_teacher_pass_and_keeps_the_gradient(world):
    """distill=False drops the teacher forward from the compiled step, yet gives exactly the
    gradient of the full step whose rows all have distill_mask 0 (GRPO alone)."""
    batch = _batch(world)
    grpo = dataclasses.replace(batch.loss, distill_mask=np.zeros(GROUP, np.float32))
    graphdef, params = nnx.split(world["model"], nnx.Param)
    loss = LossConfig(distill_support="full", distill_alpha=1.0, chunk_size=64, beta=1.0)

    def run(distill):
        step = jax.jit(lambda p, s, t, b: loss_and_grads(graphdef, p, p, s, t, b, loss, distill))
        args = (params, batch.student, batch.teacher, grpo)
        compiled = step.lower(*args).compile()
        return compiled(*args), compiled.cost_analysis()["flops"]

    (with_teacher, _, grads_with), flops_with = run(True)
    (without, _, grads_without), flops_without = run(False)
    np.testing.assert_allclose(float(without), float(with_teacher), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads_without), jax.tree.leaves(grads_with)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-8)
    assert flops_without < 0.9 * flops_with, "the teacher pass must be gone from the step"
