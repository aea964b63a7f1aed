"""Student and teacher chat messages: the teacher's prompt carries the privileged feedback.

Student: [target image] + instruction (exactly what the policy sees at inference).
Teacher (SDPO's reprompt, two channels as in Visual-SDPO):
    [target image] + instruction
    + optionally a correct solution from a sibling rollout of the same group (never the row's own)
    + the feedback on the row's own attempt: the render as an image and the defect table with the
      responsible lines (the rubric channel), or the error log when it failed
    + "solve the original task again, fixing these problems"
The row's own response tokens then follow the teacher's prompt and are re-scored, never
generated. Pure host code: the messages go through the model's processor like any chat.
"""
from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from PIL import Image

from envs.feedback import Feedback
from envs.task import Task
from envs.teacher_context import teacher_context

DEMONSTRATION_HEADER = "A correct solution to this task, written by another attempt:"
FEEDBACK_HEADER = "Feedback on your previous attempt at this task:"
RENDER_CAPTION = "This is how your previous attempt rendered:"
RETRY_INSTRUCTION = ("Now solve the original task again, correctly: write the complete program, "
                     "fixing every problem listed above.")


@dataclasses.dataclass(frozen=True)
class TeacherPromptConfig:
    """Which privileged channels the teacher sees (config.teacher.*)."""

    show_render: bool = True
    show_defects: bool = True
    show_error: bool = True
    demonstration: bool = True
    max_defects: int = 12
    max_log_chars: int = 1500

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "TeacherPromptConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(raw).items() if k in fields})


def png_image(png: bytes) -> Image.Image:
    """Decode a render for the processor (RGB, fully loaded so the bytes can go)."""
    with Image.open(io.BytesIO(png)) as opened:
        return opened.convert("RGB")


def _task_parts(task: Task, target_image: Image.Image | None) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if target_image is not None:
        parts.append({"type": "image", "image": target_image})
    parts.append({"type": "text", "text": task.instruction})
    return parts


def student_messages(task: Task, target_image: Image.Image | None) -> list[dict[str, Any]]:
    return [{"role": "user", "content": _task_parts(task, target_image)}]


def has_privileged_context(feedback: Feedback, demonstration: str | None,
                           config: TeacherPromptConfig) -> bool:
    """Whether the teacher sees anything the student does not (else the row carries no signal)."""
    if demonstration is not None and config.demonstration:
        return True
    if feedback.ok:
        return (config.show_render and feedback.render_png is not None) or config.show_defects
    return config.show_error


def teacher_messages(task: Task, target_image: Image.Image | None, feedback: Feedback,
                     config: TeacherPromptConfig, demonstration: str | None = None
                     ) -> list[dict[str, Any]]:
    """The teacher's chat for one rollout (see the module docstring)."""
    parts = _task_parts(task, target_image)
    if demonstration is not None and config.demonstration:
        parts.append({"type": "text", "text": f"\n\n{DEMONSTRATION_HEADER}\n{demonstration}"})
    feedback_parts: list[dict[str, Any]] = []
    if feedback.ok:
        if config.show_render and feedback.render_png is not None:
            feedback_parts += [{"type": "text", "text": f"\n{RENDER_CAPTION}\n"},
                               {"type": "image", "image": png_image(feedback.render_png)}]
        if config.show_defects:
            feedback_parts.append({"type": "text", "text": "\n" + teacher_context(
                feedback, max_defects=config.max_defects)})
    elif config.show_error:
        feedback_parts.append({"type": "text", "text": "\n" + teacher_context(
            feedback, max_log_chars=config.max_log_chars)})
    if feedback_parts:
        parts.append({"type": "text", "text": f"\n\n{FEEDBACK_HEADER}"})
        parts += feedback_parts
    parts.append({"type": "text", "text": f"\n\n{RETRY_INSTRUCTION}"})
    return [{"role": "user", "content": parts}]
