"""What the teacher sees: the one home of the privileged context.

Student: [target image] + instruction (exactly what the policy sees at inference).
Teacher (SDPO's reprompt, with Visual-SDPO's two channels):
    [target image] + instruction
    + optionally a correct solution from a sibling rollout of the same prompt (never the row's own)
    + the feedback on the row's own attempt: the render as an image and the defect table with the
      responsible lines (the rubric channel), or the error log when it failed
    + "solve the original task again, fixing these problems"
or, with `show_reference` (OPSD, the paper's distillation baseline), the task's reference program
in place of all feedback and demonstrations.
The row's own response tokens then follow the teacher's prompt and are re-scored, never
generated. A prompt over the token budget is cut (shorter log, fewer defects, no demonstration,
then no feedback text), and whether the row is distilled is decided from what was actually kept:
a teacher that is left with nothing the student does not see teaches nothing.

The feedback text is deterministic (defects ordered by severity, kind, position; numbers rounded),
so teacher prompts are reproducible. Host-side only; never imports jax.
"""
from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from typing import Any

from PIL import Image

from envs.feedback import Defect, Feedback
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.checks import require_positive_ints
from sdpo_jax.replies import Reply

DEMONSTRATION_HEADER = "A correct solution to this task, written by another attempt:"
REFERENCE_HEADER = "The reference solution to this task:"
FEEDBACK_HEADER = "Feedback on your previous attempt at this task:"
RENDER_CAPTION = "This is how your previous attempt rendered:"
RETRY_INSTRUCTION = ("Now solve the original task again, correctly: write the complete program, "
                     "fixing every problem listed above.")
TEXT_STYLES = ("table", "json")


class TeacherPromptError(ValueError):
    """Even the shortest teacher prompt does not fit; the message names the budget to raise."""


@dataclasses.dataclass(frozen=True)
class TeacherContextConfig:
    """The privileged channels (config.context): the render image, the defect table (at most
    `max_defects` rows), the error log (its last `max_log_chars` characters), a successful
    sibling as a demonstration; `max_prompt_tokens` bounds the whole teacher prompt.
    `show_reference` (OPSD) replaces all of these with the task's reference program."""

    show_render: bool
    show_defects: bool
    show_error: bool
    demonstration: bool
    show_reference: bool
    max_defects: int
    max_log_chars: int
    max_prompt_tokens: int

    def __post_init__(self):
        require_positive_ints("TeacherContextConfig", self,
                              ("max_defects", "max_log_chars", "max_prompt_tokens"))

    def shortened(self) -> list["TeacherContextConfig"]:
        """This config, then ever shorter variants, for prompts over the token budget."""
        return [self,
                dataclasses.replace(self, max_log_chars=max(1, self.max_log_chars // 4),
                                    max_defects=max(1, self.max_defects // 3)),
                dataclasses.replace(self, max_log_chars=min(self.max_log_chars, 200),
                                    max_defects=min(self.max_defects, 2), demonstration=False),
                dataclasses.replace(self, show_defects=False, show_error=False,
                                    demonstration=False, show_reference=False)]


@dataclasses.dataclass(frozen=True)
class TeacherPrompt:
    """A row's teacher prompt as kept: `privileged` when it shows the teacher something the
    student does not see, `cut` when it had to be shortened to fit."""

    chat: ProcessedChat
    privileged: bool
    cut: bool


def png_image(png: bytes) -> Image.Image:
    """Decode a render for the processor (RGB, fully loaded so the bytes can go)."""
    with Image.open(io.BytesIO(png)) as opened:
        return opened.convert("RGB")


def student_messages(task: Task, target_image: Image.Image | None) -> list[dict[str, Any]]:
    return [{"role": "user", "content": _task_parts(task, target_image)}]


def teacher_messages(task: Task, target_image: Image.Image | None, feedback: Feedback,
                     config: TeacherContextConfig, demonstration: str | None = None
                     ) -> list[dict[str, Any]]:
    """The teacher's chat for one rollout (see the module docstring)."""
    parts = _task_parts(task, target_image)
    if config.show_reference:  # OPSD: the reference (when the task has one), never feedback
        if (task.target or "").strip():
            language = domain_spec(task.domain).language
            parts.append({"type": "text", "text": f"\n\n{REFERENCE_HEADER}\n```{language}\n"
                                                  f"{task.target.rstrip()}\n```"})
        parts.append({"type": "text", "text": f"\n\n{RETRY_INSTRUCTION}"})
        return [{"role": "user", "content": parts}]
    if demonstration is not None and config.demonstration:
        parts.append({"type": "text", "text": f"\n\n{DEMONSTRATION_HEADER}\n{demonstration}"})
    feedback_parts: list[dict[str, Any]] = []
    if feedback.ok:
        if config.show_render and feedback.render_png is not None:
            feedback_parts += [{"type": "text", "text": f"\n{RENDER_CAPTION}\n"},
                               {"type": "image", "image": png_image(feedback.render_png)}]
        if config.show_defects:
            feedback_parts.append({"type": "text", "text": "\n" + feedback_text(
                feedback, max_defects=config.max_defects)})
    elif config.show_error:
        feedback_parts.append({"type": "text", "text": "\n" + feedback_text(
            feedback, max_log_chars=config.max_log_chars)})
    if feedback_parts:
        parts.append({"type": "text", "text": f"\n\n{FEEDBACK_HEADER}"})
        parts += feedback_parts
    parts.append({"type": "text", "text": f"\n\n{RETRY_INSTRUCTION}"})
    return [{"role": "user", "content": parts}]


def is_privileged(task: Task, feedback: Feedback, demonstration: str | None,
                  config: TeacherContextConfig) -> bool:
    """Whether a teacher prompt built with `config` shows anything the student does not see."""
    if config.show_reference:
        return bool((task.target or "").strip())
    if demonstration is not None and config.demonstration:
        return True
    if feedback.ok:
        return (config.show_render and feedback.render_png is not None) or config.show_defects
    return config.show_error


def teacher_prompt(processor: Qwen3VLProcessor, task: Task, target_image: Image.Image | None,
                   feedback: Feedback, demonstration: str | None,
                   config: TeacherContextConfig) -> TeacherPrompt:
    """The richest teacher prompt within config.max_prompt_tokens (see `shortened`)."""
    for i, attempt in enumerate(config.shortened()):
        chat = processor(teacher_messages(task, target_image, feedback, attempt, demonstration))
        if len(chat.input_ids) <= config.max_prompt_tokens:
            privileged = is_privileged(task, feedback, demonstration, attempt)
            return TeacherPrompt(chat, privileged, cut=i > 0)
    raise TeacherPromptError(
        f"task {task.task_id}: even the shortest teacher prompt has {len(chat.input_ids)} tokens "
        f"> config.context.max_prompt_tokens={config.max_prompt_tokens}. Fix: raise it (or lower "
        f"config.data.image_max_pixels).")


def demonstration(row: int, siblings: Sequence[int], feedbacks: Sequence[Feedback],
                  replies: Sequence[Reply], language: str) -> str | None:
    """SDPO's demonstration for `row`: the program of its best successful sibling (never the row
    itself) when that one scored higher; none for a row that succeeded cleanly."""
    own = feedbacks[row]
    if own.ok and not own.defects:
        return None
    best = max((i for i in siblings if i != row and feedbacks[i].ok),
               key=lambda i: (feedbacks[i].reward, -i), default=None)
    if best is None or feedbacks[best].reward <= own.reward:
        return None
    return f"```{language}\n{replies[best].program.code.rstrip()}\n```"


def feedback_text(feedback: Feedback, *, style: str = "table", max_defects: int = 12,
                  max_log_chars: int = 1500) -> str:
    """The error log of a failed run, or the defect table ("table": markdown; "json": the rubric
    channel as JSON) of a rendered one, at most `max_defects` rows (the rest counted)."""
    if style not in TEXT_STYLES:
        raise ValueError(f"feedback text style must be one of {TEXT_STYLES}, got {style!r}")
    if not feedback.ok:
        return _failure_text(feedback, max_log_chars)
    defects = sorted(feedback.defects,
                     key=lambda d: (-round(d.severity, 3), d.kind, tuple(d.region)))
    shown, hidden = defects[:max_defects], len(defects) - min(len(defects), max_defects)
    if style == "json":
        return json.dumps({"ok": True, "render_size": feedback.render_size,
                           "defects": [_row(d, feedback.render_size) for d in shown],
                           "more_defects": hidden}, sort_keys=True, ensure_ascii=False)
    size = (f"{feedback.render_size[0]}x{feedback.render_size[1]} px" if feedback.render_size
            else "the render")
    if not defects:
        return f"Your program ran and rendered {size}; no visual defects were detected."
    lines = [f"Your program ran and rendered {size}. Visual defects found (most severe first):",
             "| # | kind | severity | where | lines | message |", "|---|---|---|---|---|---|"]
    for i, defect in enumerate(shown, 1):
        row = _row(defect, feedback.render_size)
        lines.append(f"| {i} | {row['kind']} | {row['severity']:.2f} | {row['where']} | "
                     f"{row['lines'] or '-'} | {row['message'].replace('|', '/')} |")
    if hidden:
        lines.append(f"({hidden} more defects not shown)")
    return "\n".join(lines)


def _format_spans(spans: tuple[tuple[int, int], ...]) -> str:
    """(3, 3), (7, 9) -> "3, 7-9"."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _task_parts(task: Task, target_image: Image.Image | None) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if target_image is not None:
        parts.append({"type": "image", "image": target_image})
    parts.append({"type": "text", "text": task.instruction})
    return parts


def _failure_text(feedback: Feedback, max_log_chars: int) -> str:
    error = feedback.error
    lines = ["Your program failed and produced no render."]
    if error is not None:
        where = f" (line {error.line})" if error.line is not None else ""
        lines.append(f"Error{where}: {error.type}: {error.message}")
    log = (feedback.stderr or "").strip()
    if log:
        tail = log[-max_log_chars:]
        lines.append(f"Error log{' (end)' if len(log) > max_log_chars else ''}:\n{tail}")
    return "\n".join(lines)


def _row(defect: Defect, size: tuple[int, int] | None) -> dict:
    x0, y0, x1, y1 = (int(round(v)) for v in defect.region)
    return {"kind": defect.kind, "severity": round(defect.severity, 2),
            "where": f"{_place(defect.region, size)}({x0},{y0})-({x1},{y1})",
            "lines": _format_spans(defect.lines), "message": defect.message}


def _place(region, size: tuple[int, int] | None) -> str:
    """A coarse word for where a region sits ("top-left ", "centre ", ...), empty without a size."""
    if not size or size[0] <= 0 or size[1] <= 0:
        return ""
    cx, cy = (region[0] + region[2]) / 2 / size[0], (region[1] + region[3]) / 2 / size[1]
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre " if (vertical, horizontal) == ("middle", "centre") else \
        f"{vertical}-{horizontal} "
