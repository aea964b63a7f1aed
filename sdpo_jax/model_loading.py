"""The policy's starting point: a size from configs/model_sizes.py (random weights) or a local
checkpoint folder (Hugging Face safetensors or this project's Flax/orbax layout), placed on the
mesh by the model's logical axis rules. Never downloads anything.
"""
from __future__ import annotations

import dataclasses
import os

from jax.sharding import Mesh

from configs import model_sizes
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import PARAMS_DIR, load_flax_checkpoint, load_hf_checkpoint
from models.qwen3_vl.model import Qwen3VL, init_model
from models.qwen3_vl.processor import ImageProcessor, ImageProcessorConfig, Qwen3VLProcessor
from models.tokenizers.load import QWEN3, load_tokenizer


def size_config(size: str, real_tokenizer: bool = True, overrides: dict | None = None,
                **runtime) -> Qwen3VLConfig:
    """The architecture `size`, with `overrides` ({"text_config": {...}, "vision_config": {...}})
    applied; with `real_tokenizer`, small sizes get the real Qwen3 vocabulary and special-token
    ids (the real sizes have them already), so the real tokenizer drives them."""
    spec = model_sizes.get_config(size).to_dict()
    for part, values in (overrides or {}).items():
        if part not in ("text_config", "vision_config"):
            raise ValueError(f"config.model.overrides.{part}: only text_config and vision_config "
                             f"can be overridden")
        spec[part].update(dict(values))
    if real_tokenizer:
        real = model_sizes.get_config("8b").to_dict()
        spec["text_config"]["vocab_size"] = max(spec["text_config"]["vocab_size"],
                                                real["text_config"]["vocab_size"])
        for name in ("image_token_id", "video_token_id", "vision_start_token_id",
                     "vision_end_token_id"):
            spec[name] = real[name]
    return Qwen3VLConfig.from_dict(spec, **runtime)


def load_model(folder: str, mesh: Mesh | None = None, **runtime) -> tuple[Qwen3VLConfig, Qwen3VL]:
    """An HF folder or a Flax checkpoint folder, told apart by the `params/` orbax folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Checkpoint folder not found: {folder}. Fix: pass a local Hugging Face Qwen3-VL "
            f"folder (config.json + *.safetensors) or a Flax checkpoint made by "
            f"`python -m models.qwen3_vl.convert hf-to-flax SRC DST`.")
    if os.path.isdir(os.path.join(folder, PARAMS_DIR)):
        return load_flax_checkpoint(folder, mesh=mesh, **runtime)
    return load_hf_checkpoint(folder, mesh=mesh, **runtime)


def runtime_options(run_config) -> dict:
    """config.model's options that are not architecture (dtypes, scan, remat, chunking)."""
    m = run_config.model
    return dict(param_dtype=m.param_dtype, dtype=m.dtype, scan_layers=m.scan_layers,
                remat=m.remat, attention_query_chunk=m.attention_query_chunk,
                attention_impl=m.attention_impl)


def architecture(run_config) -> Qwen3VLConfig:
    """config.model.size (with its overrides) and the runtime options, without any weights; a
    size driven by the Qwen3 tokenizer gets its vocabulary and token ids, a size made for another
    tokenizer (e.g. "toy" for "synthetic_charts") keeps its own."""
    m = run_config.model
    return size_config(m.size, real_tokenizer=m.tokenizer == QWEN3, overrides=m.overrides,
                       **runtime_options(run_config))


def build_processor(run_config, model_config: Qwen3VLConfig) -> Qwen3VLProcessor:
    """The processor of config.model.tokenizer (the checkpoint folder's own files first) with
    images resized into config.data's pixel range."""
    m = run_config.model
    image = ImageProcessorConfig.for_model(model_config)
    image = dataclasses.replace(image, max_pixels=run_config.data.image_max_pixels,
                                min_pixels=run_config.data.image_min_pixels)
    tokenizer = load_tokenizer(m.tokenizer, folder=m.checkpoint or None)
    return Qwen3VLProcessor(model_config, tokenizer, ImageProcessor(image))


def build_model(run_config, mesh: Mesh) -> tuple[Qwen3VLConfig, Qwen3VL]:
    """config.model -> (architecture, model placed on `mesh`); random weights are created
    directly on their shardings, so no device ever holds the whole model."""
    if run_config.model.checkpoint:
        return load_model(run_config.model.checkpoint, mesh=mesh, **runtime_options(run_config))
    config = architecture(run_config)
    return config, init_model(config, run_config.seed, mesh)
