"""Supervised warm start: examples as the module promises, the loss as a plain cross-entropy over
the responses, and the trainer's sft mode end to end (export included)."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs.sft_toy import get_config
from envs.pool import EnvPool
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.vision_inputs import prepare_vision_inputs
from sdpo_jax.data import generated_tasks
from sdpo_jax.model_loading import architecture, build_processor
from sdpo_jax.run_config import RunConfig
from sdpo_jax.sft import SupervisedExamples, pack_supervised, reply_text, spec_of
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.teacher_context import FEEDBACK_HEADER
from sdpo_jax.train_step import supervised_step


@pytest.fixture(scope="module")
def world():
    c = get_config()
    c.sft.examples_per_step = 4
    c.sft.careless_probability = 1.0  # every applicable lever careless: revisions have work
    run = RunConfig.from_config(c)
    model_config = architecture(run)
    processor = build_processor(run, model_config)
    pool = EnvPool(1, {})
    examples = SupervisedExamples(processor, pool, run.sft, run.context, seed=0)
    tasks = [generated_tasks("synthetic:train:50")[i] for i in range(4)]
    plain, revisions = examples(0, tasks, [None] * 4)
    yield dict(run=run, model_config=model_config, processor=processor, tasks=tasks,
               plain=plain, revisions=revisions, examples=examples)
    pool.close()


def test_plain_examples_answer_the_task_with_a_careless_program(world):
    tok = world["processor"].tokenizer
    assert len(world["plain"]) == 2 and len(world["revisions"]) == 2
    for example, task in zip(world["plain"], world["tasks"][2:]):
        assert example.careless, "probability 1: every applicable lever is careless"
        expected = reply_text(write_program(spec_of(task), example.careless).code)
        assert tok.decode(example.response) == expected + "<|im_end|>"
        assert FEEDBACK_HEADER not in tok.decode(example.prompt.input_ids)


def test_revision_examples_show_the_feedback_and_answer_with_the_clean_program(world):
    tok = world["processor"].tokenizer
    for example, task in zip(world["revisions"], world["tasks"][:2]):
        prompt = tok.decode(example.prompt.input_ids)
        assert FEEDBACK_HEADER in prompt and task.instruction in prompt
        assert ("Visual defects found" in prompt) or ("failed" in prompt), prompt[-400:]
        assert tok.decode(example.response) == reply_text(write_program(spec_of(task)).code) \
            + "<|im_end|>"


def test_examples_are_a_pure_function_of_the_step(world):
    again = world["examples"](0, world["tasks"], [None] * 4)
    other = world["examples"](1, world["tasks"], [None] * 4)
    assert [e.careless for e in again[0] + again[1]] == \
        [e.careless for e in world["plain"] + world["revisions"]]
    np.testing.assert_array_equal(again[1][0].prompt.input_ids,
                                  world["revisions"][0].prompt.input_ids)
    assert [e.careless for e in other[0]] != [] and other is not again


def test_the_step_loss_is_the_cross_entropy_of_each_example_run_alone(world):
    """Packed rows (several examples per row, segment ids) must train exactly what each example
    alone, unpadded, would: the same mean log-likelihood of the response tokens."""
    run, config = world["run"], world["model_config"]
    examples = world["plain"] + world["revisions"]
    batch, placed = pack_supervised(config, examples, config=run.sft, context=run.context,
                                    slot_patches=64, target_images=False)
    assert all(placed) and batch.sequences.vision is not None, "revisions show their render"
    assert batch.sequences.segment_ids.max() >= 2, "this batch packs examples together"
    model = Qwen3VL(config, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)

    def alone(m, example):
        chat, response = example.prompt, example.response
        p, r = len(chat.input_ids), len(response)
        ids = np.concatenate([chat.input_ids, response])[None]
        positions = np.concatenate([chat.position_ids, np.tile(
            p + chat.rope_delta + np.arange(r), (3, 1))], axis=1)[:, None]
        vision = (prepare_vision_inputs(config.vision, pixel_values=chat.pixel_values,
                                        image_grid_thw=chat.image_grid_thw)
                  if len(chat.image_grid_thw) else None)
        logp = jax.nn.log_softmax(m(ids, positions, None, vision)[0, p - 1:p + r - 1], axis=-1)
        return jnp.take_along_axis(logp, response[:, None], -1).sum()

    def reference(params):
        m = nnx.merge(graphdef, params)
        return -sum(alone(m, e) for e in examples) / sum(len(e.response) for e in examples)

    from sdpo_jax.train_step import init_train_state
    _, state = init_train_state(model, run.optim, "live")
    _, metrics = jax.jit(lambda s, b: supervised_step(graphdef, s, b, chunk_size=64,
                                                      optim=run.optim))(state, batch)
    np.testing.assert_allclose(float(metrics["loss/cross_entropy"]), float(reference(params)),
                               rtol=2e-5)
    assert float(metrics["sft/response_tokens"]) == sum(len(e.response) for e in examples)


def _small_run(num_steps=2):
    c = get_config()
    c.sft.examples_per_step = 2
    c.env.num_workers = 1
    c.train.update(dict(num_steps=num_steps, checkpoint_every=1, plot_every=1))
    c.eval.update(dict(every=num_steps, count=2))
    return c


@pytest.mark.slow
def test_sft_mode_trains_evaluates_and_exports_a_loadable_policy(tmp_path):
    from sdpo_jax.model_loading import load_model
    from sdpo_jax.trainer import Trainer
    trainer = Trainer(_small_run(), str(tmp_path))
    metrics = trainer.run()
    assert np.isfinite(metrics["loss/cross_entropy"]) and "eval/exec_rate" in metrics
    assert os.path.isfile(tmp_path / "model" / "tokenizer.model")
    config, model = load_model(str(tmp_path / "model"))
    assert config.text.vocab_size == 2048
    rows = [dataclasses.asdict(config.text)["vocab_size"]]
    assert rows == [2048] and isinstance(model, Qwen3VL)


@pytest.mark.slow
def test_an_interrupted_warm_start_resumes_with_the_same_examples(tmp_path):
    """The next step's tasks are drawn (and their attempts rendered) a step ahead; a checkpoint
    rewinds the data stream to before them, so a resumed run trains exactly the same steps."""
    from sdpo_jax.trainer import Trainer
    config = _small_run(num_steps=3)
    config.eval.every = 0
    straight = Trainer(config, str(tmp_path / "straight"))
    straight.run()
    Trainer(config, str(tmp_path / "resumed")).run(until=1)
    resumed = Trainer(config, str(tmp_path / "resumed"))
    resumed.run()
    for a, b in zip(jax.tree.leaves(straight.state.params), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_an_example_longer_than_a_row_sits_out_and_the_step_runs(world):
    """A task whose example does not fit a row must not stop a run: it holds no tokens, the
    shapes stay the same, and the others train as before."""
    run = world["run"]
    tight = dataclasses.replace(run.sft, row_tokens=16)
    examples = SupervisedExamples(world["processor"], world["examples"].pool, tight, run.context,
                                  seed=0)
    plain, revisions = examples(0, world["tasks"], [None] * 4)
    assert all(e.dropped and not len(e.response) for e in plain + revisions)
    batch, placed = pack_supervised(world["model_config"], plain[:1] + world["plain"][1:]
                                    + world["revisions"], config=run.sft, context=run.context,
                                    slot_patches=64, target_images=False)
    assert placed == [False, True, True, True]
    assert batch.sequences.input_ids.shape == (run.sft.rows, run.sft.row_tokens)
    assert batch.mask.sum() == sum(len(e.response) for e in world["plain"][1:]
                                   + world["revisions"])
