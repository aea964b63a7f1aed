"""The whole loop on the real chart env: outputs on disk, and bit-exact resume after a stop."""
import json

import jax
import numpy as np
import pytest

from configs.default import get_config
from sdpo_jax.trainer import Trainer


def _config(num_steps=3):
    c = get_config()
    c.data.image_max_pixels = 64 * 64
    c.data.image_min_pixels = 32 * 32
    c.rollout.prompts_per_step = 1
    c.rollout.group_size = 2
    c.rollout.max_new_tokens = 12
    c.rollout.max_prompt_tokens = 256  # the synthetic tasks' prompts
    c.context.max_prompt_tokens = 640
    c.eval.every = 0  # these tests are about the step; evaluation has its own
    c.env.num_workers = 1
    c.train.num_steps = num_steps
    c.train.checkpoint_every = 1
    return c


def _params(trainer):
    return [np.asarray(x) for x in jax.tree.leaves(trainer.state.params)]


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path):
    straight = Trainer(_config(), str(tmp_path / "straight"))
    straight.run()
    reference = _params(straight)

    first = Trainer(_config(), str(tmp_path / "resumed"))
    first.run(until=1)  # a preempted job: checkpointed after step 1, then gone
    second = Trainer(_config(), str(tmp_path / "resumed"))
    second.run()
    resumed = _params(second)
    assert len(reference) == len(resumed)
    for a, b in zip(reference, resumed):
        np.testing.assert_array_equal(a, b)

    out = tmp_path / "resumed"
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == [1, 2, 3], f"metrics must hold each step once after a resume, got {steps}"
    assert (out / "plots.png").stat().st_size > 0
    assert any(p.name.startswith("events") for p in (out / "tb").iterdir())
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.isdigit())[-1] == "3"
