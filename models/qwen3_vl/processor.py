"""Qwen3-VL inputs: images to packed pixel rows, and chat messages to model inputs.

`ImageProcessor` is bit-equal to transformers' `Qwen2VLImageProcessorPil` configured by a
Qwen3-VL `preprocessor_config.json`: RGB (alpha composited on white), bicubic `smart_resize` to
multiples of patch*merge inside [min_pixels, max_pixels] (small images are upscaled), x/255 then
(x-mean)/std in float32, and rows in 2x2 merge-block order, each row laid out (C, T, ph, pw)
with the frame repeated T times.

`Qwen3VLProcessor` renders messages with the chat template, tokenizes (with any tokenizer of
`models.tokenizers`: the real Qwen3 BPE or a small sentencepiece model holding the same control
tokens), expands each `<|image_pad|>` to its image's merged-token count (like transformers'
Qwen3VLProcessor) and adds the 3-row MRoPE positions (rope_index.py). It belongs to one model: its
config decides the token ids and patch geometry, and a tokenizer or preprocessor that disagrees
is refused up front.
Host code (numpy + Pillow): it must never run jax computations or import torch.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.qwen3_vl.chat_template import render_chat
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from models.tokenizers.base import Tokenizer
from models.tokenizers.load import load_tokenizer

# 1/255 as transformers spells it (rescale_factor in preprocessor_config.json).
_RESCALE = 0.00392156862745098
_MAX_ASPECT_RATIO = 200


@dataclasses.dataclass(frozen=True)
class ImageProcessorConfig:
    """Qwen3-VL preprocessing values (the checkpoint's preprocessor_config.json overrides)."""

    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 65536
    max_pixels: int = 16777216
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = _RESCALE

    def __post_init__(self):
        for name in ("patch_size", "temporal_patch_size", "merge_size", "min_pixels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ImageProcessorConfig.{name} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.max_pixels < self.min_pixels:
            raise ValueError(f"ImageProcessorConfig.max_pixels ({self.max_pixels}) is below "
                             f"min_pixels ({self.min_pixels})")
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or 0 in self.image_std:
            raise ValueError("image_mean and image_std need 3 values each (RGB), std non-zero; "
                             f"got {self.image_mean}, {self.image_std}")

    @property
    def factor(self) -> int:
        """Side lengths are rounded to this: one merge block of patches."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "ImageProcessorConfig":
        """From preprocessor_config.json fields (`size` or legacy `min_pixels`/`max_pixels`)."""
        size = spec.get("size") or {}
        defaults = cls()
        return cls(
            patch_size=int(spec.get("patch_size", defaults.patch_size)),
            temporal_patch_size=int(spec.get("temporal_patch_size", defaults.temporal_patch_size)),
            merge_size=int(spec.get("merge_size", defaults.merge_size)),
            min_pixels=int(spec.get("min_pixels") or size.get("shortest_edge")
                           or defaults.min_pixels),
            max_pixels=int(spec.get("max_pixels") or size.get("longest_edge")
                           or defaults.max_pixels),
            image_mean=tuple(float(v) for v in spec.get("image_mean", defaults.image_mean)),
            image_std=tuple(float(v) for v in spec.get("image_std", defaults.image_std)),
            rescale_factor=float(spec.get("rescale_factor", defaults.rescale_factor)))

    @classmethod
    def for_model(cls, config: Qwen3VLConfig) -> "ImageProcessorConfig":
        """Qwen3-VL defaults with the patch geometry of `config`'s vision tower."""
        v = config.vision
        return cls(patch_size=v.patch_size, temporal_patch_size=v.temporal_patch_size,
                   merge_size=v.spatial_merge_size)

    @classmethod
    def from_pretrained(cls, folder: str, default: "ImageProcessorConfig | None" = None
                        ) -> "ImageProcessorConfig":
        """The folder's preprocessor_config.json, or `default` (Qwen3-VL's) if it has none."""
        path = os.path.join(folder, "preprocessor_config.json")
        if not os.path.exists(path):
            return default or cls()
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_dict(json.load(f))
        except (ValueError, TypeError, AttributeError) as err:
            raise ValueError(f"Cannot read {path}: {err}. Fix: repair the file or delete it to "
                             f"use the Qwen3-VL defaults.") from err


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int
                 ) -> tuple[int, int]:
    """Target (height, width): multiples of factor, area in [min_pixels, max_pixels], aspect
    ratio kept as closely as rounding allows (Qwen2-VL's rule, used unchanged by Qwen3-VL)."""
    if max(height, width) / min(height, width) > _MAX_ASPECT_RATIO:
        raise ValueError(f"Image of {width}x{height} pixels has an aspect ratio above "
                         f"{_MAX_ASPECT_RATIO}. Fix: crop or pad it first.")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def load_image(source: Any) -> Image.Image:
    """An upright RGB PIL image from a path, PIL image or uint8 HxW(xC) array.

    EXIF orientation is applied (as transformers' and Qwen's loaders do) and transparency is
    composited onto white, as transformers' image processor and Qwen's own qwen-vl-utils do.
    (transformers' `apply_chat_template` path loader instead drops alpha, exposing whatever
    colour hides under transparent pixels; for opaque images the two agree.)
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Image file not found: {path}. Fix: check the path.")
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened.copy()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"Cannot read image {path}: {err}") from err
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim in (2, 3):
        image = Image.fromarray(source)
    else:
        raise TypeError(f"An image must be a file path, a PIL image or a uint8 HxW[xC] array, "
                        f"got {type(source).__name__}")
    image = ImageOps.exif_transpose(image)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


@dataclasses.dataclass(frozen=True)
class PixelInputs:
    """Packed vision-tower input: all images' patch rows, and each image's (t, h, w) grid."""

    pixel_values: np.ndarray  # (sum of t*h*w, C*T*P*P) float32
    image_grid_thw: np.ndarray  # (num_images, 3) int64


class ImageProcessor:
    """Images -> `PixelInputs`, identical to transformers' Qwen2VLImageProcessorPil output."""

    def __init__(self, config: ImageProcessorConfig | None = None):
        self.config = config or ImageProcessorConfig()

    def patchify(self, image: Image.Image) -> tuple[np.ndarray, tuple[int, int, int]]:
        """One image's patch rows in merge-block order and its (1, h, w) patch grid."""
        cfg = self.config
        height, width = smart_resize(image.height, image.width, cfg.factor, cfg.min_pixels,
                                     cfg.max_pixels)
        resized = image.resize((width, height), resample=Image.Resampling.BICUBIC)
        # transformers rescales in float64 and casts, then normalises in float32.
        pixels = (np.asarray(resized).astype(np.float64) * cfg.rescale_factor).astype(np.float32)
        pixels = (pixels - np.asarray(cfg.image_mean, np.float32)) / np.asarray(
            cfg.image_std, np.float32)
        p, m, t = cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size
        grid_h, grid_w = height // p, width // p
        blocks = pixels.reshape(grid_h // m, m, p, grid_w // m, m, p, 3)
        # -> (block_row, block_col, row_in_block, col_in_block, C, ph, pw)
        blocks = blocks.transpose(0, 3, 1, 4, 6, 2, 5)
        frames = np.broadcast_to(blocks[:, :, :, :, :, None], (*blocks.shape[:5], t, p, p))
        return frames.reshape(grid_h * grid_w, 3 * t * p * p), (1, grid_h, grid_w)

    def __call__(self, images: Sequence[Any]) -> PixelInputs:
        rows, grids = [], []
        for source in images:
            patches, grid = self.patchify(load_image(source))
            rows.append(patches)
            grids.append(grid)
        row_width = 3 * self.config.temporal_patch_size * self.config.patch_size ** 2
        return PixelInputs(
            pixel_values=np.concatenate(rows) if rows else np.zeros((0, row_width), np.float32),
            image_grid_thw=np.asarray(grids, np.int64).reshape(-1, 3))

    def num_tokens(self, grid_thw: Sequence[int]) -> int:
        """LLM tokens for one image: its patches divided by one merge block."""
        return int(np.prod(grid_thw)) // self.config.merge_size ** 2


@dataclasses.dataclass(frozen=True)
class ProcessedChat:
    """One conversation as model inputs (unbatched; the sampler/trainer pads and stacks)."""

    text: str  # the rendered prompt, one placeholder per image
    input_ids: np.ndarray  # (L,) int32, each <|image_pad|> expanded to its token count
    mm_token_type_ids: np.ndarray  # (L,) int32: 0 text, 1 image
    position_ids: np.ndarray  # (3, L) int32: MRoPE T/H/W positions
    rope_delta: int  # the token after the prompt sits at position L + rope_delta
    pixel_values: np.ndarray  # (patch rows, C*T*P*P) float32
    image_grid_thw: np.ndarray  # (num_images, 3) int64


class Qwen3VLProcessor:
    """Chat messages (text + images) -> `ProcessedChat` for the model described by `config`."""

    def __init__(self, config: Qwen3VLConfig, tokenizer: Tokenizer | None = None,
                 image_processor: ImageProcessor | None = None):
        self.config = config
        self.tokenizer = tokenizer or Qwen3Tokenizer.load()
        self.image_processor = image_processor or ImageProcessor(
            ImageProcessorConfig.for_model(config))
        self._check_agreement()

    @classmethod
    def load(cls, folder: str, config: Qwen3VLConfig | None = None) -> "Qwen3VLProcessor":
        """For a checkpoint folder (HF or Flax): its config.json (unless `config` is given), its
        own tokenizer (tokenizer.model or tokenizer.json, see `load_tokenizer`) and
        preprocessor_config.json where present, else the bundled Qwen3 tokenizer and Qwen3-VL
        preprocessing with the model's patch geometry."""
        config = config or Qwen3VLConfig.from_json_file(folder)
        image_config = ImageProcessorConfig.from_pretrained(
            folder, default=ImageProcessorConfig.for_model(config))
        return cls(config, load_tokenizer(None, folder), ImageProcessor(image_config))

    def _check_agreement(self) -> None:
        special, cfg = self.tokenizer.special, self.config
        ids = {"image_token_id": (special.image_pad, cfg.image_token_id),
               "video_token_id": (special.video_pad, cfg.video_token_id),
               "vision_start_token_id": (special.vision_start, cfg.vision_start_token_id),
               "vision_end_token_id": (special.vision_end, cfg.vision_end_token_id)}
        wrong = [f"{name}: tokenizer {tok}, model {model}" for name, (tok, model) in ids.items()
                 if tok != model]
        if len(self.tokenizer) > cfg.text.vocab_size:
            wrong.append(f"tokenizer has {len(self.tokenizer)} tokens, model vocab_size is "
                         f"{cfg.text.vocab_size}")
        image, vision = self.image_processor.config, cfg.vision
        geometry = {"patch_size": (image.patch_size, vision.patch_size),
                    "temporal_patch_size": (image.temporal_patch_size, vision.temporal_patch_size),
                    "merge_size": (image.merge_size, vision.spatial_merge_size)}
        wrong += [f"{name}: preprocessor {ours}, model {model}"
                  for name, (ours, model) in geometry.items() if ours != model]
        if wrong:
            raise ValueError("The tokenizer/preprocessor do not belong to this model: "
                             + "; ".join(wrong) + ". Fix: use the checkpoint's own tokenizer "
                             "and preprocessor_config.json, or a config whose token ids are the "
                             "tokenizer's (configs/model_sizes.py: the real sizes for the Qwen3 "
                             "tokenizer, toy for synthetic_charts).")

    def __call__(self, messages: Sequence[Mapping], *, add_generation_prompt: bool = True,
                 add_vision_id: bool = False, tools: Sequence[Mapping] | None = None
                 ) -> ProcessedChat:
        rendered = render_chat(messages, add_generation_prompt=add_generation_prompt,
                               add_vision_id=add_vision_id, tools=tools)
        return self.encode(rendered.text, rendered.images)

    def encode(self, text: str, images: Sequence[Any]) -> ProcessedChat:
        """Tokenize an already rendered prompt whose `<|image_pad|>` tokens stand, in order,
        for `images`, expand each to that image's merged-token count, and add positions."""
        special = self.tokenizer.special
        ids = np.asarray(self.tokenizer.encode(text), np.int32)
        pads = np.flatnonzero(ids == special.image_pad)
        if len(pads) != len(images):
            raise ValueError(
                f"The prompt holds {len(pads)} <|image_pad|> tokens but {len(images)} images were "
                f"given. Fix: one image per placeholder (a literal '<|image_pad|>' typed into "
                f"message text also counts as one).")
        if (ids == special.video_pad).any():
            raise ValueError("The prompt holds a <|video_pad|> token; this port takes images "
                             "only. Fix: remove it from the message text.")
        pixels = self.image_processor(images)
        repeats = np.ones(len(ids), np.int64)
        repeats[pads] = [self.image_processor.num_tokens(g) for g in pixels.image_grid_thw]
        input_ids = np.repeat(ids, repeats)
        token_types = (input_ids == special.image_pad).astype(np.int32)
        positions, deltas = rope_index(input_ids[None], self.config,
                                       image_grid_thw=pixels.image_grid_thw,
                                       mm_token_type_ids=token_types[None])
        return ProcessedChat(
            text=text, input_ids=input_ids, mm_token_type_ids=token_types,
            position_ids=positions[:, 0], rope_delta=int(deltas[0]),
            pixel_values=pixels.pixel_values, image_grid_thw=pixels.image_grid_thw)
