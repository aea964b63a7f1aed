"""The tiny Qwen3-VL parity setup shared by the model tests: config, HF reference, inputs.

The HF model is `Qwen3VLForConditionalGeneration` (transformers 5.23.0, fp32, eager attention)
built from `configs/model_sizes.py:tiny` with *loud* random weights (norm weights 1 +/- 0.2,
biases N(0, 0.1), matrices N(0, 1/fan_in), embeddings N(0, 1)): HF's default init (norms 1,
biases 0, std 0.02) hides bugs in biases, norms, GELU variants and DeepStack. torch is imported
lazily so only the tests that need the reference pay for it.
"""
from __future__ import annotations

import functools

import numpy as np

from configs import model_sizes
from models.qwen3_vl.config import Qwen3VLConfig

TRANSFORMERS_VERSION = "5.23.0"
PAD = 0


def tiny_dict(**top: object) -> dict:
    d = model_sizes.get_config("tiny").to_dict()
    d.update(top)
    d["text_config"]["tie_word_embeddings"] = d["tie_word_embeddings"]
    return d


def tiny_config(**runtime: object) -> Qwen3VLConfig:
    return Qwen3VLConfig.from_dict(tiny_dict(), **runtime)


def build_hf_model(config_dict: dict, seed: int = 0):
    """An fp32 eager HF model of `config_dict` with loud random weights."""
    import torch
    import transformers

    assert transformers.__version__ == TRANSFORMERS_VERSION, (
        f"parity is pinned to transformers {TRANSFORMERS_VERSION}, found "
        f"{transformers.__version__}; re-verify the port before bumping it.")
    torch.set_num_threads(2)
    hf_config = transformers.Qwen3VLConfig(**config_dict)
    hf_config._attn_implementation = "eager"
    hf_config.text_config._attn_implementation = "eager"
    hf_config.vision_config._attn_implementation = "eager"
    model = transformers.Qwen3VLForConditionalGeneration(hf_config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.4 * (torch.rand(p.shape, generator=gen) - 0.5))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name or "pos_embed" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(fan_in))
    return model


def random_model(config: Qwen3VLConfig, seed: int = 0):
    """Our model with loud random weights drawn in numpy (no per-shape XLA compiles: eager
    jax.random init of many shapes costs ~10 s of compilation on a busy CPU)."""
    import jax
    from flax import nnx

    from models.qwen3_vl.convert import abstract_model

    rng = np.random.default_rng(seed)
    model = abstract_model(config)
    values = []
    for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        shape, kind = v.shape, path[-1]
        if kind == "scale":
            x = 1 + 0.4 * (rng.random(shape) - 0.5)
        elif kind == "bias":
            x = 0.1 * rng.standard_normal(shape)
        elif kind == "table":
            x = rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]) / (shape[0] if
                                                       path[1] in ("layers", "blocks") else 1))
        values.append((path, v.replace(jax.numpy.asarray(x, v.dtype))))
    nnx.update(model, nnx.from_flat_state(values))
    return model


def state_dict_numpy(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


@functools.lru_cache(maxsize=None)
def hf_tiny_model():
    """(HF model, its state_dict as numpy) for the tiny untied config."""
    model = build_hf_model(tiny_dict())
    return model, state_dict_numpy(model)


def image_batch(config: Qwen3VLConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Two left-padded rows holding three images of different grids (two in row 0).

    Row 0: text, image 4x6, text, image 6x4, text. Row 1: 6 pads, text, image 4x4, text.
    """
    rng = np.random.default_rng(seed)
    vs, ve, img = config.vision_start_token_id, config.vision_end_token_id, config.image_token_id
    grids = np.array([[1, 4, 6], [1, 6, 4], [1, 4, 4]], np.int64)
    tokens = [int(np.prod(g)) // config.vision.merge_unit for g in grids]

    def text(n: int) -> list[int]:
        return rng.integers(1, 60, n).tolist()

    row0 = text(3) + [vs] + [img] * tokens[0] + [ve] + text(2) + [vs] + [img] * tokens[1] + \
        [ve] + text(4)
    row1 = text(5) + [vs] + [img] * tokens[2] + [ve] + text(3)
    length = len(row0)
    row1 = [PAD] * (length - len(row1)) + row1
    ids = np.array([row0, row1], np.int64)
    mask = (np.arange(length)[None, :] >= np.array([0, row1.count(PAD)])[:, None]).astype(np.int64)
    patches = int(grids.prod(axis=1).sum())
    return dict(input_ids=ids, attention_mask=mask,
                pixel_values=rng.standard_normal((patches, config.vision.patch_dim)).astype(np.float32),
                image_grid_thw=grids,
                mm_token_type_ids=(ids == img).astype(np.int32))
