"""Supervised warm start: what the policy is taught before RL, as examples of the synthetic chart
tasks (sdpo_jax.synthetic), so that RL starts from a model that writes real, fixable mistakes and
can use feedback in context.

Two kinds of example, both trained by token cross-entropy on the response only:
- plain: the task -> a program drawn from the careless prior (each defect lever careless with
  `careless_probability`), so the warm-started policy makes the mistakes RL should remove;
- revision: the task plus the privileged context of a careless attempt, built by the teacher's
  own prompt builder exactly as the teacher will see it (render, defect table with lines, or the
  error log; sdpo_jax.teacher_context) -> the clean reference program. This teaches the model to
  use feedback, which is what makes its own teacher better than itself.
Every step's examples are a pure function of (seed, step, the tasks drawn), so a resumed run
sees the same examples. Host-side numpy; the batch is packed into fixed shapes per kind (plain
prompts are short, revision prompts carry the feedback), so padding does not dominate and the
step compiles once.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
from PIL import Image

from envs.feedback import Feedback
from envs.pool import EnvPool
from envs.task import Task
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.checks import require_positive_ints
from sdpo_jax.sequences import pack_sequences
from sdpo_jax.synthetic.levers import sample_careless
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.synthetic.spec import ChartSpec
from sdpo_jax.teacher_context import (TeacherContextConfig, TeacherPromptError, student_messages,
                                      teacher_prompt)
from sdpo_jax.train_step import SupervisedBatch

log = logging.getLogger("sdpo_jax")


class SftDataError(ValueError):
    """A task cannot make warm-start examples; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class SftConfig:
    """config.sft. examples_per_step of which round(revision_share * examples_per_step) are
    revisions; careless_probability: the careless prior's chance per lever; max_prompt_tokens
    and max_response_tokens: the plain prompt's and the response's budgets (a revision's prompt
    has config.context.max_prompt_tokens); chunk_size: positions per cross-entropy chunk."""

    examples_per_step: int
    revision_share: float
    careless_probability: float
    max_prompt_tokens: int
    max_response_tokens: int
    chunk_size: int

    def __post_init__(self):
        require_positive_ints("SftConfig", self, ("examples_per_step", "max_prompt_tokens",
                                                  "max_response_tokens", "chunk_size"))
        for name in ("revision_share", "careless_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SftConfig.{name} = {getattr(self, name)!r} is invalid: "
                                 f"expected a number in [0, 1]")

    @property
    def revisions_per_step(self) -> int:
        return round(self.revision_share * self.examples_per_step)

    @property
    def plain_per_step(self) -> int:
        return self.examples_per_step - self.revisions_per_step


@dataclasses.dataclass(frozen=True)
class Example:
    """One supervised example: the prompt as the processor made it and the response's token ids
    (a fenced program, closed by the end-of-turn token)."""

    task_id: str
    prompt: ProcessedChat
    response: np.ndarray
    careless: frozenset[str]
    dropped: bool = False  # did not fit the budgets: an empty row (see `_dropped`)


def reply_text(program: str) -> str:
    """A reply as the policy should write it: the program in one fenced python block."""
    return f"```python\n{program}```"


def spec_of(task: Task) -> ChartSpec:
    if "spec" not in task.meta:
        raise SftDataError(f"task {task.task_id} has no synthetic spec: the warm start writes "
                           f"careless and clean programs from it. Fix: train on synthetic chart "
                           f"tasks (data source format 'synthetic_chart').")
    return ChartSpec.from_json(task.meta["spec"])


class SupervisedExamples:
    """Builds each step's examples (see the module docstring); revisions' careless attempts are
    judged by the env pool."""

    def __init__(self, processor: Qwen3VLProcessor, pool: EnvPool, config: SftConfig,
                 context: TeacherContextConfig, seed: int):
        self.processor = processor
        self.pool = pool
        self.config = config
        self.context = context
        self.seed = seed

    def __call__(self, step: int, tasks: Sequence[Task],
                 target_images: Sequence[Image.Image | None]) -> tuple[list[Example],
                                                                       list[Example]]:
        """(plain, revision) examples of `step` from its `tasks` (examples_per_step of them,
        the first `revisions_per_step` become revisions)."""
        if len(tasks) != self.config.examples_per_step:
            raise ValueError(f"{len(tasks)} tasks for {self.config.examples_per_step} examples")
        specs = [spec_of(task) for task in tasks]
        careless = [sample_careless(spec, self.config.careless_probability,
                                    np.random.default_rng([self.seed, step, i]))
                    for i, spec in enumerate(specs)]
        count = self.config.revisions_per_step
        attempts = [write_program(spec, chosen).code
                    for spec, chosen in zip(specs[:count], careless[:count])]
        feedbacks = self.pool.map(list(zip(tasks[:count], attempts)))
        revisions = [self._revision(task, image, spec, chosen, feedback)
                     for task, image, spec, chosen, feedback
                     in zip(tasks[:count], target_images[:count], specs[:count], careless[:count],
                            feedbacks)]
        plain = [self._example(task, self.processor(student_messages(task, image)),
                               self.config.max_prompt_tokens, "config.sft.max_prompt_tokens",
                               write_program(spec, chosen).code, chosen)
                 for task, image, spec, chosen
                 in zip(tasks[count:], target_images[count:], specs[count:], careless[count:])]
        return plain, revisions

    def _revision(self, task: Task, image: Image.Image | None, spec: ChartSpec,
                  careless: frozenset[str], feedback: Feedback) -> Example:
        try:
            prompt = teacher_prompt(self.processor, task, image, feedback, None, self.context)
        except TeacherPromptError as err:
            return _dropped(task, str(err))
        return self._example(task, prompt.chat, self.context.max_prompt_tokens,
                             "config.context.max_prompt_tokens", write_program(spec).code,
                             careless)

    def _example(self, task: Task, prompt: ProcessedChat, prompt_budget: int, budget_key: str,
                 program: str, careless: frozenset[str]) -> Example:
        tokenizer = self.processor.tokenizer
        response = tokenizer.encode(reply_text(program)) + [tokenizer.special.im_end]
        if len(prompt.input_ids) > prompt_budget:
            return _dropped(task, f"its prompt has {len(prompt.input_ids)} tokens, over "
                                  f"{budget_key}={prompt_budget}. Fix: raise it.")
        if len(response) > self.config.max_response_tokens:
            return _dropped(task, f"its program needs {len(response)} tokens, over "
                                  f"config.sft.max_response_tokens="
                                  f"{self.config.max_response_tokens}. Fix: raise it.")
        return Example(task.task_id, prompt, np.asarray(response, np.int32), careless)


_EMPTY_CHAT = ProcessedChat(
    text="", input_ids=np.zeros(0, np.int32), mm_token_type_ids=np.zeros(0, np.int32),
    position_ids=np.zeros((3, 0), np.int32), rope_delta=0,
    pixel_values=np.zeros((0, 0), np.float32), image_grid_thw=np.zeros((0, 3), np.int64))


def _dropped(task: Task, reason: str) -> Example:
    """A task whose example does not fit the step's fixed shapes keeps its row with no tokens
    (the step trains on the others, the shapes stay the same, the run goes on); counted in
    sft/dropped_examples."""
    log.warning("warm start: task %s left out of its step: %s", task.task_id, reason)
    return Example(task.task_id, _EMPTY_CHAT, np.zeros(0, np.int32), frozenset(), dropped=True)


def pack_supervised(model_config: Qwen3VLConfig, plain: Sequence[Example],
                    revisions: Sequence[Example], *, config: SftConfig,
                    context: TeacherContextConfig, slot_patches: int,
                    target_images: bool) -> SupervisedBatch:
    """The step's inputs: each kind in its own fixed shapes (plain prompts are short,
    revision prompts carry the feedback: one compiled step, padding within each kind only);
    image slots for the target image (when shown) and, in revisions, the render of the careless
    attempt."""
    r = config.max_response_tokens

    def responses(examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.zeros((len(examples), r), np.int32)
        for row, example in enumerate(examples):
            tokens[row, :len(example.response)] = example.response
        lengths = np.array([len(e.response) for e in examples], np.int32)
        return tokens, np.arange(r)[None, :] < lengths[:, None]

    def pack(examples, prompt_length, slots_per_row, what):
        if not examples:
            return None
        tokens, mask = responses(examples)
        return pack_sequences(model_config, [e.prompt for e in examples], tokens, mask,
                              prompt_length=prompt_length,
                              image_slots=slots_per_row * len(examples),
                              slot_patches=slot_patches, what=what)

    renders = int(target_images) + int(context.show_render)
    tokens, mask = responses(list(plain) + list(revisions))
    return SupervisedBatch(
        plain=pack(plain, config.max_prompt_tokens, int(target_images), "sft_prompt"),
        revision=pack(revisions, context.max_prompt_tokens, renders, "teacher_prompt"),
        tokens=tokens, mask=mask.astype(np.float32))

