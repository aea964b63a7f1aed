"""Prompt + response sequences for the teacher-forced student and teacher passes.

Each row is a prompt (left-padded to a fixed length L) followed by the SAME response tokens
(right-padded to R): the student's row holds its own prompt, the teacher's row the prompt
enriched with privileged feedback. Because every row's prompt ends at column L, the hidden
states that predict the response are columns [L-1, L+R-1) in both passes, which is how the loss
aligns teacher and student on the same tokens. Lengths and the patch capacity are fixed by the
config, so every step has the same shapes (one compile; and, on pods, every host agrees on the
global shape without talking). Host-side numpy only.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from flax import struct

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ProcessedChat
from models.qwen3_vl.vision_inputs import VisionInputs, prepare_vision_inputs

PAD_ID = 0  # any valid id: padded columns are masked out of attention and loss
_BUDGET_KEYS = {"prompt": "config.rollout.max_prompt_tokens",
                "teacher_prompt": "config.teacher.context.max_prompt_tokens"}


class SequenceError(ValueError):
    """A prompt or its images do not fit the configured static shapes."""


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Static shapes of the teacher-forced passes (the run config derives them)."""

    response_length: int
    student_prompt_length: int
    teacher_prompt_length: int
    student_patches: int
    teacher_patches: int


@struct.dataclass
class Sequences:
    """Device inputs of one teacher-forced pass: rows = prompt (L, left-padded) + response (R)."""

    input_ids: np.ndarray  # [N, L + R] int32
    positions: np.ndarray  # [3, N, L + R] int32 (MRoPE rows)
    mask: np.ndarray  # [N, L + R] bool: real prompt tokens and real response tokens
    vision: VisionInputs | None  # all rows' images packed in row order

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.response_length

    response_length: int = struct.field(pytree_node=False, default=0)


def pack_sequences(config: Qwen3VLConfig, chats: Sequence[ProcessedChat], responses: np.ndarray,
                   response_mask: np.ndarray, *, prompt_length: int, patch_capacity: int,
                   what: str = "prompt") -> Sequences:
    """Rows `chats[i]` + `responses[i]`; images packed into exactly `patch_capacity` patch rows.

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
    pixels, grids = [], []
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
        if len(chat.image_grid_thw):
            pixels.append(chat.pixel_values)
            grids.append(chat.image_grid_thw)
    input_ids[:, prompt_length:] = np.where(response_mask, responses, PAD_ID)
    mask[:, prompt_length:] = response_mask
    vision = None
    if grids:
        total = sum(len(p) for p in pixels)
        if total > patch_capacity:
            raise SequenceError(
                f"the {what}s' images need {total} patch rows, more than the configured capacity "
                f"{patch_capacity}. Fix: lower config.data.image_max_pixels or raise the capacity.")
        vision = prepare_vision_inputs(config.vision, pixel_values=np.concatenate(pixels),
                                       image_grid_thw=np.concatenate(grids), pad_to=patch_capacity)
    return Sequences(input_ids=input_ids, positions=positions, mask=mask, vision=vision,
                     response_length=r)
