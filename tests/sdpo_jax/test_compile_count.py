"""Five steps of the tiny default compile one train step and one rollout program (prefill +
decode), whatever the batches hold: prompt images of varying sizes and rows that all fail (a
teacher pass without a single render). The step's inputs have one pytree and one set of shapes
per run (train_step.InputLayout), the sampler's image slots are sized from the config."""
import itertools
import json

import pytest
from multiprocess_train import tiny_config

from sdpo_jax.trainer import Trainer

SIZES = ((640, 480), (200, 520), (96, 64), (512, 128), (333, 333))


class ResizedTargets:
    """The real reference renders, each shown at the next of SIZES (tasks' images vary)."""

    def __init__(self, inner):
        self.inner = inner
        self.sizes = itertools.cycle(SIZES)

    def wanted(self, task) -> bool:
        return self.inner.wanted(task)

    def __call__(self, tasks):
        return [None if image is None else image.resize(next(self.sizes))
                for image in self.inner(tasks)]


@pytest.mark.slow  # five real steps with renders: 4-6 min on the shared 2-core host
def test_five_steps_compile_one_train_step_and_one_rollout_program(tmp_path):
    config = tiny_config(num_steps=5)
    config.data.target_images = True  # student prompts carry an image
    trainer = Trainer(config, str(tmp_path))
    trainer.target_images = ResizedTargets(trainer.target_images)
    grids = set()
    sample = trainer._sample

    def recording(index, policy_version):
        batch = sample(index, policy_version)
        grids.update(tuple(map(tuple, chat.image_grid_thw)) for chat in batch.chats)
        return batch

    trainer._sample = recording
    trainer.run()
    assert len(grids) >= 3, f"the prompt images did not vary in size: {grids}"
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 5 and min(m["env/exec_rate"] for m in metrics) < 1.0
    assert trainer.train_step.jitted._cache_size() == 1, "the train step compiled again"
    assert trainer.sampler.compilations == 1, "the rollout program compiled again"
