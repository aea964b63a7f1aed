"""models.clip against transformers' CLIPModel and CLIPImageProcessor on a tiny random CLIP that
the test saves locally (torch is a test-only dependency): same preprocessing, same embeddings."""
from __future__ import annotations

import json
import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from models import clip

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_tiny import EOS, IMAGE_SIZE, save_tiny_clip  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """The tiny random CLIP folder, its torch model and its image processor."""
    folder = tmp_path_factory.mktemp("tiny_clip")
    reference, processor = save_tiny_clip(str(folder))
    return str(folder), reference, processor


def _images(seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sizes = [(30, 30), (47, 31), (33, 80), (120, 64), (17, 22)]  # (w, h): wide, tall, odd, small
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def test_preprocessing_matches_clip_image_processor(tiny_clip):
    folder, _, processor = tiny_clip
    ours = clip.ClipImageProcessor.from_folder(folder)
    images = _images()
    expected = np.stack([processor(images=[im], return_tensors="np")["pixel_values"][0]
                         for im in images])
    got = ours(images)
    assert got.shape == expected.shape == (len(images), 3, IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_openai_defaults_match_the_published_processor():
    ours, processor = clip.ClipImageProcessor(), transformers.CLIPImageProcessor()
    image = _images(1)[3]
    np.testing.assert_allclose(ours([image]),
                               processor(images=[image], return_tensors="np")["pixel_values"],
                               atol=1e-6)


def test_image_and_text_embeddings_match_transformers(tiny_clip):
    folder, reference, processor = tiny_clip
    config, model = clip.load_clip(folder)
    assert config.projection_dim == 24 and config.vision.num_patches == 25
    pixels = clip.ClipImageProcessor.from_folder(folder)(_images())
    ids = np.array([[0, 5, 7, EOS, 1, 1], [0, 9, EOS, 1, 1, 1]])
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        out = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                        pixel_values=torch.tensor(pixels))
        image_raw = reference.visual_projection(
            reference.vision_model(pixel_values=torch.tensor(pixels)).pooler_output).numpy()
    image = model.image_features(jnp.asarray(pixels))
    text = model.text_features(jnp.asarray(ids), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(image), image_raw, atol=1e-5)
    np.testing.assert_allclose(np.asarray(clip.normalize(image)), out.image_embeds.numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(clip.normalize(text)), out.text_embeds.numpy(),
                               atol=1e-5)


def test_a_folder_that_disagrees_with_its_config_is_refused_by_name(tiny_clip, tmp_path):
    folder, reference, _ = tiny_clip
    reference.save_pretrained(tmp_path, safe_serialization=True)
    values = json.loads((tmp_path / "config.json").read_text())
    values["vision_config"]["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(clip.ClipCheckpointError, match="vision_model.encoder.layers.2"):
        clip.load_clip(str(tmp_path))
    with pytest.raises(clip.ClipCheckpointError, match="config.json"):
        clip.load_clip(str(tmp_path / "nowhere"))
