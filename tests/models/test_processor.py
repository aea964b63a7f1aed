"""Our image processor and prompt processor against transformers' Qwen3-VL processor."""
from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from configs import model_sizes
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import (
    ImageProcessor, ImageProcessorConfig, Qwen3VLProcessor, load_image, smart_resize)
from qwen3vl_hf_reference import SAMPLE_DATA, hf_processor

HOPPER = os.path.join(SAMPLE_DATA, "grace_hopper.jpg")  # 512x600 RGB photo
LOGO = os.path.join(SAMPLE_DATA, "logo2.png")  # 542x130 RGBA, wide
ICON = os.path.join(SAMPLE_DATA, "Minduka_Present_Blue_Pack.png")  # 128x128 RGBA: upscaled


@functools.lru_cache(maxsize=1)
def real_config() -> Qwen3VLConfig:
    return Qwen3VLConfig.from_dict(model_sizes.get_config("8b"))


@functools.lru_cache(maxsize=1)
def ours() -> Qwen3VLProcessor:
    return Qwen3VLProcessor(real_config())


def hf_rope_index(input_ids, mm_token_type_ids, image_grid_thw):
    """transformers' Qwen3VLModel.get_rope_index (it reads only the merge size off the model)."""
    import types

    import torch
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel

    owner = types.SimpleNamespace(config=types.SimpleNamespace(
        vision_config=types.SimpleNamespace(spatial_merge_size=2)))
    owner.get_vision_position_ids = Qwen3VLModel.get_vision_position_ids.__get__(owner)
    grid = None if image_grid_thw is None else torch.as_tensor(np.asarray(image_grid_thw))
    positions, deltas = Qwen3VLModel.get_rope_index(
        owner, torch.as_tensor(input_ids), torch.as_tensor(mm_token_type_ids), grid)
    return positions.numpy(), deltas.numpy()


def hf_pixels(images, **overrides):
    out = hf_processor().image_processor(images=[Image.open(p) if isinstance(p, str) else p
                                                 for p in images], **overrides)
    return np.asarray(out["pixel_values"]), np.asarray(out["image_grid_thw"])


@pytest.mark.parametrize("path, grid", [(HOPPER, (1, 38, 32)), (LOGO, (1, 8, 34)),
                                        (ICON, (1, 16, 16))])
def test_pixels_equal_transformers_bit_for_bit(path, grid):
    expected_pixels, expected_grid = hf_pixels([path])
    got = ImageProcessor()([path])
    assert got.image_grid_thw.tolist() == expected_grid.tolist() == [list(grid)]
    assert got.pixel_values.dtype == np.float32
    assert got.pixel_values.shape == expected_pixels.shape == (np.prod(grid), 1536)
    np.testing.assert_array_equal(got.pixel_values, expected_pixels)


def test_small_image_is_upscaled_to_min_pixels():
    # The 128x128 icon has 16384 pixels < 65536: smart_resize scales it to 256x256.
    assert Image.open(ICON).size == (128, 128)
    assert ImageProcessor()([ICON]).image_grid_thw.tolist() == [[1, 16, 16]]
    assert ImageProcessor().num_tokens((1, 16, 16)) == 64


def test_several_images_grayscale_and_arrays_pack_like_transformers():
    gray = Image.open(HOPPER).convert("L").resize((97, 61))
    array = np.asarray(Image.open(LOGO).convert("RGB"))[:100, :300]
    expected_pixels, expected_grid = hf_pixels([HOPPER, gray, Image.fromarray(array), ICON])
    got = ImageProcessor()([HOPPER, gray, array, ICON])
    assert got.image_grid_thw.tolist() == expected_grid.tolist()
    np.testing.assert_array_equal(got.pixel_values, expected_pixels)


def test_config_overrides_match_transformers():
    """Lower pixel bounds (how tests and small runs keep sequences short) behave the same."""
    size = {"shortest_edge": 32 * 32, "longest_edge": 64 * 64 * 4}
    expected_pixels, expected_grid = hf_pixels([HOPPER, ICON], size=size)
    config = ImageProcessorConfig(min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    got = ImageProcessor(config)([HOPPER, ICON])
    assert got.image_grid_thw.tolist() == expected_grid.tolist()
    np.testing.assert_array_equal(got.pixel_values, expected_pixels)


def test_preprocessor_config_json_round_trip(tmp_path):
    hf_processor().image_processor.save_pretrained(tmp_path)
    assert ImageProcessorConfig.from_pretrained(str(tmp_path)) == ImageProcessorConfig()
    assert ImageProcessorConfig.from_dict(
        {"min_pixels": 1024, "max_pixels": 4096, "patch_size": 14}) == ImageProcessorConfig(
            min_pixels=1024, max_pixels=4096, patch_size=14)
    assert ImageProcessorConfig.from_pretrained(str(tmp_path / "absent")) == ImageProcessorConfig()
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="preprocessor_config.json"):
        ImageProcessorConfig.from_pretrained(str(tmp_path))


@settings(max_examples=300, deadline=None)
@given(height=st.integers(1, 5000), width=st.integers(1, 5000),
       min_pixels=st.sampled_from([32 * 32, 65536]), max_pixels=st.sampled_from([128 * 128, 16777216]))
def test_smart_resize_equals_transformers(height, width, min_pixels, max_pixels):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_resize
    try:
        expected = hf_resize(height, width, 32, min_pixels, max_pixels)
    except ValueError:
        with pytest.raises(ValueError, match="aspect ratio"):
            smart_resize(height, width, 32, min_pixels, max_pixels)
        return
    got = smart_resize(height, width, 32, min_pixels, max_pixels)
    assert got == expected
    assert got[0] % 32 == 0 and got[1] % 32 == 0


def test_bad_images_fail_with_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png"):
        load_image(broken)
    with pytest.raises(TypeError, match="file path, a PIL image"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="aspect ratio"):
        ImageProcessor()([Image.new("RGB", (1000, 4))])
    with pytest.raises(ValueError, match="max_pixels"):
        ImageProcessorConfig(min_pixels=100, max_pixels=10)


# transformers' chat path loads images with convert("RGB") (alpha dropped) while its image
# processor composites alpha on white like ours: the RGBA samples go in flattened, as PIL images.
CHATS = {
    "system_two_images": [
        {"role": "system", "content": "You write matplotlib code."},
        {"role": "user", "content": [{"type": "image", "image": HOPPER},
                                     {"type": "text", "text": "Reproduce this, then this:"},
                                     {"type": "image", "image": load_image(ICON)}]}],
    "multi_turn_wide_image": [
        {"role": "user", "content": [{"type": "text", "text": "Logo?"},
                                     {"type": "image", "image": load_image(LOGO)}]},
        {"role": "assistant", "content": "```python\nplt.text(0, 0, 'mpl')\n```"},
        {"role": "user", "content": "Make it blue."}],
    "text_only": [{"role": "user", "content": "Plot a sine wave."}],
}


@pytest.mark.parametrize("name", sorted(CHATS))
def test_prompt_inputs_equal_transformers(name):
    messages = CHATS[name]
    expected = hf_processor().apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True)
    got = ours()(messages)
    assert got.input_ids.tolist() == expected["input_ids"][0]
    assert got.mm_token_type_ids.tolist() == expected["mm_token_type_ids"][0]
    assert got.input_ids.dtype == got.mm_token_type_ids.dtype == np.int32
    positions, deltas = hf_rope_index(expected["input_ids"], expected["mm_token_type_ids"],
                                      expected.get("image_grid_thw"))
    assert got.position_ids.tolist() == positions[:, 0].tolist()
    assert got.rope_delta == int(deltas[0, 0])
    if "pixel_values" in expected:
        assert got.image_grid_thw.tolist() == np.asarray(expected["image_grid_thw"]).tolist()
        np.testing.assert_array_equal(got.pixel_values, np.asarray(expected["pixel_values"]))
    else:
        assert got.pixel_values.shape == (0, 1536) and got.image_grid_thw.shape == (0, 3)


def test_transparency_is_composited_on_white():
    """An RGBA image's transparent pixels come out white, as in transformers' image processor
    (not the hidden RGB values that transformers' chat-path loader exposes)."""
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 200  # red hidden under full transparency on the left half
    rgba[:, 32:, 3] = 255
    expected_pixels, _ = hf_pixels([Image.fromarray(rgba, "RGBA")])
    got = ImageProcessor()([Image.fromarray(rgba, "RGBA")])
    np.testing.assert_array_equal(got.pixel_values, expected_pixels)
    assert np.asarray(load_image(Image.fromarray(rgba, "RGBA")))[0, 0].tolist() == [255, 255, 255]


def test_image_tokens_sit_between_vision_markers():
    got = ours()(CHATS["system_two_images"])
    special = ours().tokenizer.special
    ids = got.input_ids.tolist()
    start = ids.index(special.vision_start)
    assert ids[start + 1:start + 1 + 19 * 16] == [special.image_pad] * (19 * 16)  # 38x32 patches / 4
    assert ids[start + 1 + 19 * 16] == special.vision_end
    assert int(got.mm_token_type_ids.sum()) == 19 * 16 + 8 * 8


def test_processor_refuses_a_tokenizer_or_preprocessor_of_another_model(tmp_path):
    tiny = Qwen3VLConfig.from_dict(model_sizes.get_config("tiny"))  # special ids remapped to 60..63
    with pytest.raises(ValueError, match="image_token_id: tokenizer 151655, model 62"):
        Qwen3VLProcessor(tiny)
    with pytest.raises(ValueError, match="patch_size: preprocessor 14, model 16"):
        Qwen3VLProcessor(real_config(), image_processor=ImageProcessor(
            ImageProcessorConfig(patch_size=14)))
    (tmp_path / "preprocessor_config.json").write_text('{"patch_size": 16, "min_pixels": 1024}')
    loaded = Qwen3VLProcessor.load(str(tmp_path), config=real_config())
    assert loaded.image_processor.config.min_pixels == 1024


def test_placeholder_and_image_counts_must_agree():
    processor = ours()
    typed_pad = [{"role": "user", "content": [{"type": "text", "text": "<|image_pad|> sneaky"},
                                              {"type": "image", "image": ICON}]}]
    with pytest.raises(ValueError, match="2 <\\|image_pad\\|> tokens but 1 images"):
        processor(typed_pad)
    with pytest.raises(ValueError, match="video_pad"):
        processor([{"role": "user", "content": "<|video_pad|>"}])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        processor([{"role": "user", "content": [{"type": "image", "image": "missing.png"}]}])
