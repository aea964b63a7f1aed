"""The vision tower encodes a batch of image slots: attention stays inside each image, so its
compiled memory grows linearly with the number of images; rows that share an image take one
encoding's features and get exactly what a private copy of the image would give them."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import qwen3vl_tiny as tiny
from models.qwen3_vl.convert import abstract_model
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.vision_inputs import abstract_vision_inputs, prepare_vision_inputs

CONFIG = tiny.tiny_config()


def _vision_temp_bytes(slots: int, slot_patches: int) -> int:
    graphdef, state = nnx.split(abstract_model(CONFIG))
    vision = abstract_vision_inputs(CONFIG.vision, slots, slot_patches,
                                    slots * slot_patches // CONFIG.vision.merge_unit, jnp.float32)
    encode = jax.jit(lambda s, v: nnx.merge(graphdef, s).encode_vision(v))
    return encode.lower(state, vision).compile().memory_analysis().temp_size_in_bytes


def test_vision_temporaries_grow_linearly_with_the_number_of_images():
    """4x the images of 256 patches: about 4x the scratch memory (XLA:CPU's fusion choices add a
    little), where one packed sequence with a [patches, patches] mask would take ~16x; 8x, the
    geometric middle, tells the two apart."""
    small, large = _vision_temp_bytes(2, 256), _vision_temp_bytes(8, 256)
    assert large < 8 * small, (
        f"8 images need {large / small:.1f}x the temporaries of 2: attention crosses images")


def _two_rows_one_image(shared: bool):
    """Two rows showing the same 4x6 image: one slot listed twice, or a copy per row."""
    batch = tiny.image_batch(CONFIG)
    row = batch["input_ids"][0][:3 + 1 + 6 + 1]  # text, <vs>, 6 image tokens, <ve>
    ids = np.stack([row, row])
    grid = batch["image_grid_thw"][:1]
    pixels = batch["pixel_values"][:24]
    positions, _ = rope_index(ids, CONFIG, image_grid_thw=np.concatenate([grid, grid]))
    if shared:
        vision = prepare_vision_inputs(CONFIG.vision, pixel_values=pixels, image_grid_thw=grid,
                                       token_slots=[0, 0])
    else:
        vision = prepare_vision_inputs(CONFIG.vision, pixel_values=np.concatenate([pixels] * 2),
                                       image_grid_thw=np.concatenate([grid, grid]))
    return jnp.asarray(ids), jnp.asarray(positions), vision


def test_rows_sharing_one_encoded_image_equal_rows_with_their_own_copy():
    model = tiny.random_model(CONFIG)
    forward = nnx.jit(lambda m, ids, pos, vision: m.hidden_states(ids, pos, None, vision))
    shared = _two_rows_one_image(shared=True)
    copied = _two_rows_one_image(shared=False)
    assert shared[2].pixel_values.shape[0] == 1 and copied[2].pixel_values.shape[0] == 2
    np.testing.assert_allclose(np.asarray(forward(model, *shared)),
                               np.asarray(forward(model, *copied)), atol=1e-5,
                               err_msg="a shared image gives other features than private copies")
