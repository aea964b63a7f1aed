"""The train step's input layout: fixed by the config (a batch with another pytree or shapes is
refused, not compiled), this process's rows and image slots, and a host's slots named globally
in the visual-token table."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from configs.default import get_config
from models.sharding import make_mesh
from sdpo_jax.model_loading import size_config
from sdpo_jax.rollout_batch import abstract_train_inputs
from sdpo_jax.run_config import RunConfig
from sdpo_jax.sequences import pack_sequences
from sdpo_jax.train_step import InputLayout

CONFIG = size_config("tiny", real_tokenizer=False)
RUN = RunConfig.from_config(get_config())
SHAPES = RUN.shapes(CONFIG)


@pytest.fixture(scope="module")
def layout() -> InputLayout:
    mesh = make_mesh(data=1, fsdp=-1, tensor=1)
    return InputLayout.on_mesh(mesh, CONFIG.sharding_rules,
                               *abstract_train_inputs(CONFIG, RUN.rollout.rows, SHAPES, True))


def _zeros(abstract):
    return jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), abstract)


def test_one_process_owns_every_row_and_slot(layout):
    assert layout.rows == slice(0, RUN.rollout.rows)
    local, offsets = layout.local_shapes(SHAPES)
    assert local == SHAPES and offsets == (0, 0)


def test_the_layout_places_a_batch_of_its_shapes_and_refuses_others(layout):
    student, teacher, loss = _zeros(layout.abstract)
    placed = layout.place(student, teacher, loss)
    assert jax.tree.structure(placed) == jax.tree.structure(layout.abstract)
    assert all(x.sharding == a.sharding and x.shape == a.shape
               for x, a in zip(jax.tree.leaves(placed), jax.tree.leaves(layout.abstract)))
    with pytest.raises(ValueError, match="pytree"):  # e.g. a teacher pass without images
        layout.place(student, teacher.replace(vision=None), loss)
    with pytest.raises(ValueError, match="input_ids"):  # e.g. a longer prompt bucket
        layout.place(student.replace(input_ids=np.zeros((RUN.rollout.rows, 7), np.int32)),
                     teacher, loss)


def test_a_hosts_slots_are_named_by_their_global_index_in_the_token_table():
    """Rows packed into slots that start at `slot_offset` take the features of those global
    slots; the table's padding stays 0."""
    vision_config = CONFIG.vision
    grid = np.array([[1, 4, 6]])
    patches = int(grid.prod())
    chat = dataclasses.make_dataclass("Chat", ["input_ids", "position_ids", "rope_delta",
                                               "pixel_values", "image_grid_thw"])(
        input_ids=np.array([CONFIG.image_token_id] * (patches // vision_config.merge_unit)),
        position_ids=np.zeros((3, patches // vision_config.merge_unit), np.int32),
        rope_delta=0, pixel_values=np.ones((patches, vision_config.patch_dim), np.float32),
        image_grid_thw=grid)
    response = np.ones((1, 2), np.int32)
    pack = {"prompt_length": 8, "image_slots": 1, "slot_patches": 32}
    base = pack_sequences(CONFIG, [chat], response, response > 0, **pack).vision
    shifted = pack_sequences(CONFIG, [chat], response, response > 0, slot_offset=3,
                             **pack).vision
    count = int(base.num_image_tokens)
    assert count == patches // vision_config.merge_unit
    per_slot = 32 // vision_config.merge_unit
    np.testing.assert_array_equal(shifted.token_rows[:count],
                                  base.token_rows[:count] + 3 * per_slot)
    assert not shifted.token_rows[count:].any()
