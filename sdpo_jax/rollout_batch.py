"""From sampled rows and their Feedback to the train step's inputs (host side, numpy).

For every row: the response tokens (padded to the static budget R), the sampler's log-probs, the
reward, its group (the prompt it answers: the row layout is data, `Reply.prompt_index`), the
per-token credit weights from the Feedback, and the teacher's prompt with the privileged context
(sdpo_jax.teacher_context). A row is distilled when its kept teacher prompt shows the teacher
something the student does not see and, for a failed run, when the failed-execution path is on.

On a pod each host builds only the rows it owns (sdpo_jax.multihost): a host owns whole prompt
groups, so a failed row's demonstration (a successful sibling) is always on the same host, and
its image slots are its own block of the global slots (`slot_offsets`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np
from PIL import Image

from envs.feedback import Feedback
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.credit import CreditConfig, token_responsibility, weights_from_responsibility
from sdpo_jax.losses import LossBatch
from sdpo_jax.replies import Reply
from sdpo_jax.sequences import Sequences, Shapes, abstract_sequences, pack_sequences
from sdpo_jax.teacher_context import TeacherContextConfig, demonstration, teacher_prompt


@dataclasses.dataclass
class TrainBatch:
    """The step's inputs for the rows built here, and per-row numbers for the logged metrics."""

    student: Sequences
    teacher: Sequences
    loss: LossBatch
    row_stats: dict[str, np.ndarray]  # name -> [rows]; the metric is the mean over all rows


@dataclasses.dataclass
class Rows:
    """Sampled rows as the loop carries them: tokens [N, T] (a stop token that ended a row is
    included), the sampler's log-probs [N, T], lengths [N], and each row's Reply."""

    tokens: np.ndarray
    logprobs: np.ndarray
    lengths: np.ndarray
    replies: list[Reply]

    @property
    def prompt_index(self) -> np.ndarray:
        return np.array([reply.prompt_index for reply in self.replies], np.int32)


def build_train_batch(processor: Qwen3VLProcessor, tasks: Sequence[Task],
                      target_images: Sequence[Image.Image | None],
                      student_chats: Sequence[ProcessedChat], rows: Rows,
                      feedbacks: Sequence[Feedback], *, shapes: Shapes, credit: CreditConfig,
                      context: TeacherContextConfig, distill: bool, failed_exec_path: bool,
                      slot_offsets: tuple[int, int] = (0, 0)) -> TrainBatch:
    """`tasks`, `target_images` and `student_chats` are per prompt (indexed by the rows' global
    prompt index); everything else per row. `distill=False` (the GRPO-only ablation) builds no
    teacher prompts and gives every row distill_mask 0: the returned teacher sequences are the
    student's (the step skips the teacher pass, see train_step.loss_and_grads). `shapes` gives
    this host's image slots, `slot_offsets` where they start among the global student and
    teacher slots."""
    count, r = len(rows.replies), shapes.response_length
    if not count == len(feedbacks) == len(rows.tokens):
        raise ValueError(f"{count} replies, {len(feedbacks)} feedbacks and {len(rows.tokens)} "
                         f"token rows must agree")
    prompt_of = rows.prompt_index
    width = min(rows.tokens.shape[1], r)
    mask = np.arange(r)[None, :] < np.minimum(rows.lengths, r)[:, None]
    response = np.zeros((count, r), np.int32)
    response[:, :width] = rows.tokens[:, :width]
    response = np.where(mask, response, 0)
    logprobs = np.zeros((count, r), np.float32)
    logprobs[:, :width] = rows.logprobs[:, :width]
    weights = np.ones((count, r), np.float32)
    blamed = np.zeros((count, r), np.float32)
    distill_mask = np.zeros(count, np.float32)
    teacher_chats, cut = [], np.zeros(count, np.float32)
    for row, (reply, feedback) in enumerate(zip(rows.replies, feedbacks)):
        n = min(len(reply.token_ids), r)
        responsibility = token_responsibility(reply, feedback, credit)[:n]
        weights[row, :n] = weights_from_responsibility(responsibility, credit)
        blamed[row, :n] = responsibility > 0
        if not distill:
            continue
        p = reply.prompt_index
        task = tasks[p]
        demo = demonstration(row, np.flatnonzero(prompt_of == p).tolist(), feedbacks,
                             rows.replies, domain_spec(task.domain).language)
        prompt = teacher_prompt(processor, task, target_images[p], feedback, demo, context)
        teacher_chats.append(prompt.chat)
        cut[row] = prompt.cut
        distill_mask[row] = float(prompt.privileged and (feedback.ok or failed_exec_path))
    config = processor.config
    student = pack_sequences(config, [student_chats[p] for p in prompt_of], response, mask,
                             prompt_length=shapes.student_prompt_length,
                             image_slots=shapes.student_images,
                             slot_patches=shapes.slot_patches, slot_offset=slot_offsets[0],
                             what="prompt")
    teacher_sequences = student if not distill else pack_sequences(
        config, teacher_chats, response, mask, prompt_length=shapes.teacher_prompt_length,
        image_slots=shapes.teacher_images, slot_patches=shapes.slot_patches,
        slot_offset=slot_offsets[1], what="teacher_prompt")
    rewards = np.array([f.reward for f in feedbacks], np.float32)
    loss = LossBatch(tokens=response, mask=mask.astype(np.float32), credit=weights,
                     old_logprobs=logprobs, rewards=rewards, group_ids=prompt_of,
                     distill_mask=distill_mask, blamed=blamed)
    stats = {"teacher/prompts_cut": cut, "teacher/distill_rows": distill_mask,
             "rollout/response_tokens": mask.sum(1).astype(np.float32)}
    return TrainBatch(student=student, teacher=teacher_sequences, loss=loss, row_stats=stats)


def abstract_train_inputs(config: Qwen3VLConfig, rows: int, shapes: Shapes, distill: bool
                          ) -> tuple[Sequences, Sequences, LossBatch]:
    """(student, teacher, loss batch) of a global batch of `rows`, as ShapeDtypeStructs: what
    `build_train_batch` returns for all hosts together, every step of a run (one pytree, one
    set of shapes, so one compiled step)."""
    spec = jax.ShapeDtypeStruct
    student = abstract_sequences(config, rows, prompt_length=shapes.student_prompt_length,
                                 response_length=shapes.response_length,
                                 image_slots=shapes.student_images,
                                 slot_patches=shapes.slot_patches)
    teacher = student if not distill else abstract_sequences(
        config, rows, prompt_length=shapes.teacher_prompt_length,
        response_length=shapes.response_length, image_slots=shapes.teacher_images,
        slot_patches=shapes.slot_patches)
    per_token = spec((rows, shapes.response_length), np.float32)
    per_row = spec((rows,), np.float32)
    batch = LossBatch(tokens=spec(per_token.shape, np.int32), mask=per_token, credit=per_token,
                      old_logprobs=per_token, rewards=per_row, group_ids=spec((rows,), np.int32),
                      distill_mask=per_row, blamed=per_token)
    return student, teacher, batch
