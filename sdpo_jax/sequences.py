"""Prompt + response sequences for the teacher-forced student and teacher passes.

Each row is a prompt (left-padded to a fixed length L) followed by the SAME response tokens
(right-padded to R): the student's row holds its own prompt, the teacher's row the prompt
enriched with privileged feedback. Because every row's prompt ends at column L, the hidden
states that predict the response are columns [L-1, L+R-1) in both passes, which is how the loss
aligns teacher and student on the same tokens. Each distinct image of a pass is encoded once:
rows that show the same image (the G rollouts of a prompt; the teacher rows' shared target
image) take its features from one slot (vision_inputs.py), and pixels travel in the model's
compute dtype. Lengths, image slots and patches per slot are fixed by the config, so every step
has the same shapes and the same pytree (one compile; and, on pods, every host agrees on the
global shape without talking). Host-side numpy only (jax only names abstract shapes).
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from flax import struct

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ProcessedChat
from models.qwen3_vl.vision_inputs import (VisionInputs, abstract_vision_inputs,
                                          prepare_vision_inputs)

PAD_ID = 0  # any valid id: padded columns are masked out of attention and loss
_BUDGET_KEYS = {"prompt": "config.rollout.max_prompt_tokens",
                "teacher_prompt": "config.context.max_prompt_tokens"}


class SequenceError(ValueError):
    """A prompt or its images do not fit the configured static shapes."""


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Static shapes of the teacher-forced passes (the run config derives them)."""

    response_length: int
    student_prompt_length: int
    teacher_prompt_length: int
    slot_patches: int  # patches of one image slot (the largest image the config allows)
    student_images: int  # image slots of the student pass (distinct images: one per prompt)
    teacher_images: int  # ... of the teacher pass (prompt images + one render per row)


@struct.dataclass
class Sequences:
    """Device inputs of one teacher-forced pass: rows = prompt (L, left-padded) + response (R)."""

    input_ids: np.ndarray  # [N, L + R] int32
    positions: np.ndarray  # [3, N, L + R] int32 (MRoPE rows)
    mask: np.ndarray  # [N, L + R] bool: real prompt tokens and real response tokens
    vision: VisionInputs | None  # the distinct images of all rows; None when the pass has none
    segment_ids: np.ndarray | None = None  # [N, W] int32 in packed rows (`pack_rows`), else None

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.response_length

    response_length: int = struct.field(pytree_node=False, default=0)


def abstract_sequences(config: Qwen3VLConfig, rows: int, *, prompt_length: int,
                       response_length: int, image_slots: int, slot_patches: int) -> Sequences:
    """The ShapeDtypeStructs of what `pack_sequences` returns for these static shapes
    (ahead-of-time compilation: nothing is allocated)."""
    spec = jax.ShapeDtypeStruct
    width = prompt_length + response_length
    vision = None if not image_slots else abstract_vision_inputs(
        config.vision, image_slots, slot_patches, rows * prompt_length, config.jnp_dtype)
    return Sequences(input_ids=spec((rows, width), np.int32),
                     positions=spec((3, rows, width), np.int32), mask=spec((rows, width), bool),
                     vision=vision, response_length=response_length)


def _images(chat: ProcessedChat) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(pixel rows, grid) of each image of a chat, in order."""
    ends = np.cumsum(np.asarray(chat.image_grid_thw).prod(axis=1))
    for grid, end in zip(chat.image_grid_thw, ends.tolist()):
        yield chat.pixel_values[end - int(np.prod(grid)):end], np.asarray(grid)


class _DistinctImages:
    """Slots of the distinct images seen so far; equal pixels (a shared prompt image, however
    many rows or chats carry a copy of it) map to the same slot."""

    def __init__(self):
        self.pixels: list[np.ndarray] = []
        self.grids: list[np.ndarray] = []
        self._by_key: dict[tuple, list[int]] = {}

    def slot(self, pixels: np.ndarray, grid: np.ndarray) -> int:
        sample = np.ascontiguousarray(pixels[::max(1, len(pixels) // 64)])
        key = (tuple(grid.tolist()), hashlib.blake2b(sample.tobytes(), digest_size=16).digest())
        for slot in self._by_key.get(key, []):
            if np.array_equal(self.pixels[slot], pixels):
                return slot
        self._by_key.setdefault(key, []).append(len(self.pixels))
        self.pixels.append(pixels)
        self.grids.append(grid)
        return len(self.pixels) - 1


def pack_sequences(config: Qwen3VLConfig, chats: Sequence[ProcessedChat], responses: np.ndarray,
                   response_mask: np.ndarray, *, prompt_length: int, image_slots: int,
                   slot_patches: int, slot_offset: int = 0, what: str = "prompt") -> Sequences:
    """Rows `chats[i]` + `responses[i]`; their distinct images in `image_slots` slots of
    `slot_patches` patches (no slots: a pass without images, `vision` None). `slot_offset`:
    where these slots start among a global batch's (one host's block on a pod), so the visual
    tokens' `token_rows` name global feature rows.

    Response positions continue the prompt's MRoPE positions (L_i + rope_delta_i + t on all three
    rows), exactly where generation would have put them.
    """
    n, r = responses.shape
    if len(chats) != n or response_mask.shape != (n, r):
        raise SequenceError(f"{len(chats)} {what}s, responses {responses.shape} and response mask "
                            f"{response_mask.shape} must agree on the row count.")
    width = prompt_length + r
    input_ids = np.full((n, width), PAD_ID, np.int32)
    positions = np.zeros((3, n, width), np.int32)
    mask = np.zeros((n, width), bool)
    distinct, token_slots = _DistinctImages(), []
    for row, chat in enumerate(chats):
        length = len(chat.input_ids)
        if length > prompt_length:
            raise SequenceError(
                f"{what} of row {row} has {length} tokens, more than the configured {prompt_length}."
                f" Fix: raise {_BUDGET_KEYS.get(what, 'its token budget')} or lower "
                f"config.data.image_max_pixels.")
        start = prompt_length - length
        input_ids[row, start:prompt_length] = chat.input_ids
        positions[:, row, start:prompt_length] = chat.position_ids
        mask[row, start:prompt_length] = True
        first = length + chat.rope_delta
        positions[:, row, prompt_length:] = first + np.arange(r, dtype=np.int32)
        token_slots += [distinct.slot(pixels, grid) for pixels, grid in _images(chat)]
    input_ids[:, prompt_length:] = np.where(response_mask, responses, PAD_ID)
    mask[:, prompt_length:] = response_mask
    vision = _vision_inputs(config, distinct, token_slots, image_slots=image_slots,
                            slot_patches=slot_patches, tokens=n * prompt_length,
                            slot_offset=slot_offset, what=what)
    return Sequences(input_ids=input_ids, positions=positions, mask=mask, vision=vision,
                     response_length=r)


def _vision_inputs(config: Qwen3VLConfig, distinct: _DistinctImages, token_slots: list[int], *,
                   image_slots: int, slot_patches: int, tokens: int, slot_offset: int,
                   what: str) -> VisionInputs | None:
    """The pass's distinct images in `image_slots` slots (None without slots); `tokens` is the
    static length of the visual-token table."""
    if not image_slots:
        if token_slots:
            raise SequenceError(f"the {what}s hold images but the pass has no image slots. Fix: "
                                f"give it image slots (config.data.image_max_pixels > 0).")
        return None
    try:
        any_image = bool(distinct.pixels)
        vision = prepare_vision_inputs(
            config.vision, pixel_values=np.concatenate(distinct.pixels) if any_image else None,
            image_grid_thw=np.stack(distinct.grids) if any_image else None,
            slots=image_slots, slot_patches=slot_patches, token_slots=token_slots,
            tokens=tokens, dtype=config.jnp_dtype)
    except ValueError as err:
        raise SequenceError(f"{what} images: {err}") from err
    shift = slot_offset * (slot_patches // config.vision.merge_unit)
    return vision.replace(token_rows=np.where(
        np.arange(len(vision.token_rows)) < vision.num_image_tokens, vision.token_rows + shift,
        0).astype(np.int32))


@dataclasses.dataclass(frozen=True)
class PackedRows:
    """Whole sequences (prompt + response) packed end to end into fixed rows: `sequences` carry
    segment ids (1, 2, ... within a row, 0 = padding), `targets[b, t]` is the token position t
    predicts and `loss_mask[b, t]` whether that is a response token; `placed[i]` tells whether
    sequence i found room (one that did not is left out whole, never cut)."""

    sequences: Sequences
    targets: np.ndarray  # [rows, width] int32
    loss_mask: np.ndarray  # [rows, width] float32
    placed: list[bool]


def pack_rows(config: Qwen3VLConfig, chats: Sequence[ProcessedChat],
              responses: Sequence[np.ndarray], *, rows: int, width: int, image_slots: int,
              slot_patches: int, what: str = "example") -> PackedRows:
    """Sequences `chats[i]` + `responses[i]` packed first-fit, longest first, into `rows` rows of
    `width` tokens: padding only at each row's end, so a step's compute goes to real tokens.
    Each sequence keeps its own MRoPE positions (a response continues its prompt's, as in
    `pack_sequences`) and attends only to itself (segment ids, Qwen3VL.hidden_states)."""
    lengths = [len(chat.input_ids) + len(response) for chat, response in zip(chats, responses)]
    free = [width] * rows
    row_of: dict[int, int] = {}
    for index in sorted(range(len(chats)), key=lambda i: (-lengths[i], i)):
        row = next((r for r in range(rows) if lengths[index] <= free[r]), None)
        if row is not None and lengths[index]:
            row_of[index] = row
            free[row] -= lengths[index]
    input_ids = np.full((rows, width), PAD_ID, np.int32)
    positions = np.zeros((3, rows, width), np.int32)
    segment_ids = np.zeros((rows, width), np.int32)
    targets = np.zeros((rows, width), np.int32)
    loss_mask = np.zeros((rows, width), np.float32)
    distinct, token_slots = _DistinctImages(), []
    for row in range(rows):
        start = 0
        for segment, index in enumerate(sorted(i for i, r in row_of.items() if r == row), 1):
            chat, response = chats[index], np.asarray(responses[index], np.int32)
            prompt, end = len(chat.input_ids), start + lengths[index]
            input_ids[row, start:start + prompt] = chat.input_ids
            input_ids[row, start + prompt:end] = response
            positions[:, row, start:start + prompt] = chat.position_ids
            positions[:, row, start + prompt:end] = (prompt + chat.rope_delta
                                                     + np.arange(len(response), dtype=np.int32))
            segment_ids[row, start:end] = segment
            targets[row, start + prompt - 1:end - 1] = response
            loss_mask[row, start + prompt - 1:end - 1] = 1.0
            token_slots += [distinct.slot(pixels, grid) for pixels, grid in _images(chat)]
            start = end
    vision = _vision_inputs(config, distinct, token_slots, image_slots=image_slots,
                            slot_patches=slot_patches, tokens=rows * width, slot_offset=0,
                            what=what)
    sequences = Sequences(input_ids=input_ids, positions=positions, mask=segment_ids > 0,
                          vision=vision, segment_ids=segment_ids)
    return PackedRows(sequences, targets, loss_mask, [i in row_of for i in range(len(chats))])
