"""From rollouts and their Feedback to the train step's inputs (host side, numpy).

For every rollout row: the response tokens (padded to the static budget R), the sampler's
log-probs, the reward, its group, the per-token credit weights traced from the Feedback, and
the teacher's prompt with the privileged context (render, defect table, error log, an optional
successful sibling as a demonstration). Rows whose teacher sees nothing new, or failed rows when
the failed-execution path is off, get distill_mask 0.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image

from envs.code_extract import extract_code
from envs.feedback import Feedback
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.credit import CreditConfig, rollout_credit, token_char_spans
from sdpo_jax.losses import LossBatch
from sdpo_jax.sequences import SequenceError, Sequences, pack_sequences
from sdpo_jax.teacher_prompt import (TeacherPromptConfig, has_privileged_context,
                                     teacher_messages)



@dataclasses.dataclass(frozen=True)
class Shapes:
    """Static shapes of the teacher-forced passes (config.rollout / config.teacher)."""

    response_length: int
    student_prompt_length: int
    teacher_prompt_length: int
    student_patches: int
    teacher_patches: int


@dataclasses.dataclass
class TrainBatch:
    student: Sequences
    teacher: Sequences
    loss: LossBatch
    stats: dict[str, float]


def program_of(task: Task, reply: str) -> str:
    """The program the environment runs for a reply (the same rule credit weighting uses)."""
    return extract_code(reply, domain_spec(task.domain).language).code


def reply_lengths(processor: Qwen3VLProcessor, response: np.ndarray, mask: np.ndarray
                  ) -> list[int]:
    """Tokens of each row that form its reply text: all generated ones but a final stop token
    (<|im_end|> is not part of the program; its credit weight stays 1)."""
    stops = set(processor.tokenizer.special.eos)
    lengths = []
    for row, n in enumerate(mask.sum(1).tolist()):
        lengths.append(n - 1 if n and int(response[row, n - 1]) in stops else n)
    return lengths


def replies_of(processor: Qwen3VLProcessor, tokens: np.ndarray, mask: np.ndarray) -> list[str]:
    """The exact reply text of each row (what the env's program is extracted from)."""
    return [token_char_spans(processor.tokenizer, tokens[row, :n])[0]
            for row, n in enumerate(reply_lengths(processor, tokens, mask))]


def demonstration_for(row: int, group: Sequence[int], feedbacks: Sequence[Feedback],
                      programs: Sequence[str], task: Task) -> str | None:
    """SDPO's demonstration: the best successful sibling (never the row itself) that beats it."""
    own = feedbacks[row]
    if own.ok and not own.defects:
        return None
    best = max((i for i in group if i != row and feedbacks[i].ok),
               key=lambda i: (feedbacks[i].reward, -i), default=None)
    if best is None or feedbacks[best].reward <= own.reward:
        return None
    return f"```{domain_spec(task.domain).language}\n{programs[best]}\n```"


def _fit_teacher_chat(processor: Qwen3VLProcessor, task: Task, target_image: Image.Image | None,
                      feedback: Feedback, config: TeacherPromptConfig, demonstration: str | None,
                      max_tokens: int) -> tuple[ProcessedChat, bool]:
    """The richest teacher prompt that fits `max_tokens`: shorter logs, fewer defects, no
    demonstration, then no feedback text at all. Returns the chat and whether it was cut."""
    attempts = [config,
                dataclasses.replace(config, max_log_chars=config.max_log_chars // 4,
                                    max_defects=max(1, config.max_defects // 3)),
                dataclasses.replace(config, max_log_chars=200, max_defects=2, demonstration=False),
                dataclasses.replace(config, show_defects=False, show_error=False,
                                    demonstration=False)]
    for i, attempt in enumerate(attempts):
        chat = processor(teacher_messages(task, target_image, feedback, attempt, demonstration))
        if len(chat.input_ids) <= max_tokens:
            return chat, i > 0
    raise SequenceError(f"task {task.task_id}: even the shortest teacher prompt has "
                        f"{len(chat.input_ids)} tokens > config.teacher.max_prompt_tokens="
                        f"{max_tokens}. Fix: raise it.")


def build_train_batch(processor: Qwen3VLProcessor, tasks: Sequence[Task],
                      target_images: Sequence[Image.Image | None],
                      student_chats: Sequence[ProcessedChat], group_size: int,
                      tokens: np.ndarray, lengths: np.ndarray, old_logprobs: np.ndarray,
                      feedbacks: Sequence[Feedback], *, shapes: Shapes,
                      teacher_config: TeacherPromptConfig, credit: CreditConfig,
                      failed_exec_path: bool, distill_enabled: bool = True) -> TrainBatch:
    """Rows are prompt-major: row p * group_size + g is sample g of prompt p.
    `distill_enabled=False` (the GRPO-only ablation) gives every row distill_mask 0 and builds no
    teacher prompts: the returned teacher sequences are the student's (the step skips the
    teacher pass, see train_step.loss_and_grads)."""
    rows = len(feedbacks)
    r = shapes.response_length
    if tokens.shape[0] != rows or rows != len(tasks) * group_size:
        raise ValueError(f"{rows} feedbacks, {tokens.shape[0]} token rows and {len(tasks)} "
                         f"prompts x {group_size} samples must agree.")
    response = np.zeros((rows, r), np.int32)
    logprobs = np.zeros((rows, r), np.float32)
    width = min(tokens.shape[1], r)
    response[:, :width] = tokens[:, :width]
    logprobs[:, :width] = old_logprobs[:, :width]
    mask = np.arange(r)[None, :] < np.minimum(lengths, r)[:, None]
    response = np.where(mask, response, 0)
    weights = np.ones((rows, r), np.float32)
    teacher_chats, distill, cut = [], np.zeros(rows, np.float32), 0
    programs = [program_of(tasks[row // group_size], reply)
                for row, reply in enumerate(replies_of(processor, response, mask))]
    for row, n in enumerate(reply_lengths(processor, response, mask)):
        p = row // group_size
        task, feedback = tasks[p], feedbacks[row]
        row_credit = dataclasses.replace(credit, language=domain_spec(task.domain).language)
        weights[row, :n] = rollout_credit(processor.tokenizer, response[row, :n], feedback,
                                          row_credit)
        if not distill_enabled:
            continue
        group = range(p * group_size, (p + 1) * group_size)
        demo = demonstration_for(row, group, feedbacks, programs, task)
        chat, was_cut = _fit_teacher_chat(processor, task, target_images[p], feedback,
                                          teacher_config, demo, shapes.teacher_prompt_length)
        cut += was_cut
        teacher_chats.append(chat)
        useful = has_privileged_context(feedback, demo, teacher_config)
        distill[row] = float(useful and (feedback.ok or failed_exec_path))
    student_rows = [student_chats[row // group_size] for row in range(rows)]
    config = processor.config
    student = pack_sequences(config, student_rows, response, mask,
                             prompt_length=shapes.student_prompt_length,
                             patch_capacity=shapes.student_patches, what="prompt")
    teacher = student if not distill_enabled else pack_sequences(
        config, teacher_chats, response, mask, prompt_length=shapes.teacher_prompt_length,
        patch_capacity=shapes.teacher_patches, what="teacher_prompt")
    rewards = np.array([f.reward for f in feedbacks], np.float32)
    loss = LossBatch(tokens=response, mask=mask.astype(np.float32), credit=weights,
                     old_logprobs=logprobs, rewards=rewards,
                     group_ids=np.repeat(np.arange(len(tasks), dtype=np.int32), group_size),
                     distill_mask=distill)
    stats = {"teacher/prompts_cut": cut / rows, "teacher/distill_rows": float(distill.mean()),
             "rollout/response_tokens": float(mask.sum(1).mean())}
    return TrainBatch(student=student, teacher=teacher, loss=loss, stats=stats)
