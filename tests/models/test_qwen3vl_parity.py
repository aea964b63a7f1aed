"""The Flax port against transformers 5.23.0 `Qwen3VLForConditionalGeneration`, fp32, tiny config.

Weights are loud random HF weights copied through the converter (state_dict -> flax); inputs are
a left-padded batch of two rows holding three images of different grids. Tolerance: 1e-4 max abs
on logits (scale ~4), the vision output and each DeepStack feature.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import qwen3vl_tiny as tiny
from models.qwen3_vl.convert import DictSource, load_params
from models.qwen3_vl.kv_cache import KVCache
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.vision_inputs import prepare_vision_inputs

TOL = 1e-4
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def ref():
    """HF model, its outputs on the image batch, and our model with the same weights."""
    config = tiny.tiny_config()
    hf, state_dict = tiny.hf_tiny_model()
    batch = tiny.image_batch(config)
    tb = {k: torch.from_numpy(v) for k, v in batch.items()}
    with torch.no_grad():
        logits = hf(**tb).logits.numpy()
        positions, deltas = hf.model.get_rope_index(
            tb["input_ids"], tb["mm_token_type_ids"], tb["image_grid_thw"], None,
            tb["attention_mask"])
        vision = hf.model.get_image_features(tb["pixel_values"], tb["image_grid_thw"])
    return dict(config=config, hf=hf, batch=batch, logits=logits,
                positions=positions.numpy(), deltas=deltas.numpy().ravel(),
                merged=torch.cat(vision.pooler_output).numpy(),
                deepstack=[torch.cat(f).numpy() for f in vision.deepstack_features],
                model=load_params(config, DictSource(state_dict)))


def _inputs(ref):
    config, batch = ref["config"], ref["batch"]
    positions, _ = rope_index(batch["input_ids"], config, image_grid_thw=batch["image_grid_thw"],
                              attention_mask=batch["attention_mask"])
    vision = prepare_vision_inputs(config.vision, pixel_values=batch["pixel_values"],
                                   image_grid_thw=batch["image_grid_thw"])
    return (jnp.asarray(batch["input_ids"]), jnp.asarray(positions),
            jnp.asarray(batch["attention_mask"]), vision)


@nnx.jit
def _forward(model, input_ids, positions, mask, vision):
    return model(input_ids, positions, mask, vision)


def _max_err(ours, theirs, where=None) -> float:
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    return float((diff if where is None else diff[where]).max())


def test_rope_index_equals_transformers(ref):
    positions, deltas = rope_index(ref["batch"]["input_ids"], ref["config"],
                                   image_grid_thw=ref["batch"]["image_grid_thw"],
                                   attention_mask=ref["batch"]["attention_mask"])
    np.testing.assert_array_equal(positions, ref["positions"],
                                  err_msg="3-row MRoPE positions differ from get_rope_index")
    np.testing.assert_array_equal(deltas, ref["deltas"], err_msg="rope_deltas differ")


def test_vision_output_and_deepstack_match_transformers(ref):
    *_, vision = _inputs(ref)
    merged, deepstack = nnx.jit(lambda m, v: m.encode_vision(v))(ref["model"], vision)
    rows = np.asarray(vision.token_rows)  # the slots' real tokens, in HF's packed order
    assert _max_err(merged[rows], ref["merged"]) <= TOL, "merged image tokens differ from HF"
    assert deepstack.shape[0] == len(ref["deepstack"])
    for k, theirs in enumerate(ref["deepstack"]):
        err = _max_err(deepstack[k][rows], theirs)
        assert err <= TOL, f"DeepStack feature {k} differs from HF by {err:.2e}"


def test_logits_match_transformers_left_padded_images(ref):
    logits = _forward(ref["model"], *_inputs(ref))
    valid = ref["batch"]["attention_mask"].astype(bool)
    err = _max_err(logits, ref["logits"], valid)
    assert err <= TOL, f"logits differ from HF by {err:.2e} (scale {np.abs(ref['logits']).max():.1f})"


def test_text_only_left_padded_logits_match_transformers(ref):
    ids = ref["batch"]["input_ids"].copy()
    ids[np.isin(ids, [ref["config"].image_token_id])] = 7  # images become plain text
    mask = ref["batch"]["attention_mask"]
    with torch.no_grad():
        theirs = ref["hf"](input_ids=torch.from_numpy(ids),
                           attention_mask=torch.from_numpy(mask)).logits.numpy()
    positions, deltas = rope_index(ids, ref["config"], attention_mask=mask)
    assert (deltas == 0).all()
    no_images = prepare_vision_inputs(ref["config"].vision)  # an empty pack acts like None
    ours = _forward(ref["model"], jnp.asarray(ids), jnp.asarray(positions), jnp.asarray(mask),
                    no_images)
    err = _max_err(ours, theirs, mask.astype(bool))
    assert err <= TOL, f"text-only logits differ from HF by {err:.2e}"


def test_images_and_video_mixed_match_transformers(ref):
    """A 2-frame video (timestamp text between frames) after an image: features go to their
    own placeholders in order and DeepStack joins both kinds in sequence order, like HF."""
    config, hf = ref["config"], ref["hf"]
    rng = np.random.default_rng(1)
    vs, ve = config.vision_start_token_id, config.vision_end_token_id
    img, vid = config.image_token_id, config.video_token_id
    image_grid = np.array([[1, 4, 6]])
    video_grid = np.array([[2, 4, 4]])
    ids = ([5, 6, vs] + [img] * 6 + [ve, 7, 8] + [9, vs] + [vid] * 4 + [ve] + [10, vs] +
           [vid] * 4 + [ve, 11, 12])
    ids = np.array([ids])
    types = np.where(ids == img, 1, np.where(ids == vid, 2, 0)).astype(np.int32)
    pixels = rng.standard_normal((24, config.vision.patch_dim)).astype(np.float32)
    video = rng.standard_normal((32, config.vision.patch_dim)).astype(np.float32)
    with torch.no_grad():
        theirs = hf(input_ids=torch.from_numpy(ids), pixel_values=torch.from_numpy(pixels),
                    image_grid_thw=torch.from_numpy(image_grid),
                    pixel_values_videos=torch.from_numpy(video),
                    video_grid_thw=torch.from_numpy(video_grid),
                    mm_token_type_ids=torch.from_numpy(types)).logits.numpy()
    positions, _ = rope_index(ids, config, image_grid_thw=image_grid, video_grid_thw=video_grid)
    vision = prepare_vision_inputs(config.vision, pixel_values=pixels, image_grid_thw=image_grid,
                                   pixel_values_videos=video, video_grid_thw=video_grid,
                                   slots=3, slot_patches=36)
    ours = _forward(ref["model"], jnp.asarray(ids), jnp.asarray(positions), None, vision)
    err = _max_err(ours, theirs)
    assert err <= TOL, f"image+video logits differ from HF by {err:.2e}"


def test_kv_cache_decoding_equals_full_forward(ref):
    """Prefill 21 tokens (both rows' images, row 1 left-padded), then feed the remaining tokens
    one at a time inside a jitted fori_loop; every step's logits equal the full forward's."""
    ids, positions, mask, vision = _inputs(ref)
    full = np.asarray(_forward(ref["model"], ids, positions, mask, vision))
    prompt = 21
    steps = ids.shape[1] - prompt

    @nnx.jit
    def generate(model, prompt_ids, prompt_positions, prompt_mask, vision, fed):
        cache = KVCache.create(model.config, batch=fed.shape[0], capacity=32)
        first, cache = model.prefill(cache, prompt_ids, prompt_positions, prompt_mask, vision)

        def body(i, carry):
            out, cache = carry
            logits, cache = model.decode_step(cache, fed[:, i])
            return out.at[:, i].set(logits), cache

        out = jnp.zeros((fed.shape[0], fed.shape[1], first.shape[-1]), jnp.float32)
        out, cache = jax.lax.fori_loop(0, fed.shape[1], body, (out, cache))
        return first, out, cache

    first, stepped, cache = generate(ref["model"], ids[:, :prompt], positions[:, :, :prompt],
                                     mask[:, :prompt], vision, ids[:, prompt:])
    assert _max_err(first, full[:, prompt - 1]) <= TOL, "prefill logits differ from full forward"
    for i in range(steps):
        err = _max_err(stepped[:, i], full[:, prompt + i])
        assert err <= TOL, f"decode step {i} differs from the full forward by {err:.2e}"
    np.testing.assert_array_equal(np.asarray(cache.next_position),
                                  np.asarray(positions[0, :, -1]) + 1,
                                  err_msg="next_position must continue MRoPE like HF")
    assert int(cache.end) == ids.shape[1]
