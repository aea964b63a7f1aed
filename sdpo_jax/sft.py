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
sees the same examples. Host-side numpy; the examples are packed end to end into fixed rows
(segment ids keep them apart), so padding does not dominate and the step compiles once.
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
from sdpo_jax.sequences import pack_rows
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
    revisions; careless_probability: the careless prior's chance per lever; the step's examples
    are packed into `rows` rows of `row_tokens` tokens (an example longer than a row, or one
    that finds no room, sits out its step: sft/dropped_examples); chunk_size: positions per
    cross-entropy chunk."""

    examples_per_step: int
    revision_share: float
    careless_probability: float
    rows: int
    row_tokens: int
    chunk_size: int

    def __post_init__(self):
        require_positive_ints("SftConfig", self, ("examples_per_step", "rows", "row_tokens",
                                                  "chunk_size"))
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
    dropped: bool = False  # longer than a row: no tokens (see `_dropped`)


def reply_text(program: str) -> str:
    """A reply as the policy should write it: the program in one fenced python block."""
    return f"```python\n{program}```"


def spec_of(task: Task) -> ChartSpec:
    if "spec" not in task.meta:
        raise SftDataError(f"task {task.task_id} has no synthetic spec: the warm start writes "
                           f"careless and clean programs from it. Fix: train on synthetic chart "
                           f"tasks (data source format 'synthetic_chart').")
    return ChartSpec.from_json(task.meta["spec"])


@dataclasses.dataclass(frozen=True)
class PendingExamples:
    """A step's drawn tasks whose careless attempts the env pool is judging: submitted a step
    ahead, so the renders run while the device trains the step before. `data_before` is the data
    stream's state before these tasks were drawn (a checkpoint rewinds to it: the resumed run
    draws the same tasks again)."""

    data_before: dict
    tasks: list[Task]
    specs: list[ChartSpec]
    images: list[Image.Image | None]
    careless: list[frozenset[str]]
    render_ids: list[int]


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
        return self.collect(self.submit(step, tasks, target_images, data_before={}))

    def submit(self, step: int, tasks: Sequence[Task], target_images: Sequence[Image.Image | None],
               data_before: dict) -> PendingExamples:
        """Draw `step`'s careless choices and queue the revisions' careless attempts on the pool
        (returns at once; `collect` waits for them)."""
        if len(tasks) != self.config.examples_per_step:
            raise ValueError(f"{len(tasks)} tasks for {self.config.examples_per_step} examples")
        specs = [spec_of(task) for task in tasks]
        careless = [sample_careless(spec, self.config.careless_probability,
                                    np.random.default_rng([self.seed, step, i]))
                    for i, spec in enumerate(specs)]
        count = self.config.revisions_per_step
        ids = [self.pool.submit(task, write_program(spec, chosen).code)
               for task, spec, chosen in zip(tasks[:count], specs, careless[:count])]
        return PendingExamples(data_before, list(tasks), specs, list(target_images), careless, ids)

    def collect(self, pending: PendingExamples) -> tuple[list[Example], list[Example]]:
        """(plain, revision) examples of a submitted step, once its attempts are judged."""
        done = dict(self.pool.results(pending.render_ids))
        count = len(pending.render_ids)
        revisions = [self._revision(task, image, spec, chosen, done[render_id])
                     for task, spec, image, chosen, render_id
                     in zip(pending.tasks, pending.specs, pending.images, pending.careless,
                            pending.render_ids)]
        plain = [self._example(task, self.processor(student_messages(task, image)),
                               write_program(spec, chosen).code, chosen)
                 for task, spec, image, chosen
                 in zip(pending.tasks[count:], pending.specs[count:], pending.images[count:],
                        pending.careless[count:])]
        return plain, revisions

    def _revision(self, task: Task, image: Image.Image | None, spec: ChartSpec,
                  careless: frozenset[str], feedback: Feedback) -> Example:
        try:
            prompt = teacher_prompt(self.processor, task, image, feedback, None, self.context)
        except TeacherPromptError as err:
            return _dropped(task, str(err))
        return self._example(task, prompt.chat, write_program(spec).code, careless)

    def _example(self, task: Task, prompt: ProcessedChat, program: str,
                 careless: frozenset[str]) -> Example:
        tokenizer = self.processor.tokenizer
        response = tokenizer.encode(reply_text(program)) + [tokenizer.special.im_end]
        length = len(prompt.input_ids) + len(response)
        if length > self.config.row_tokens:
            return _dropped(task, f"its prompt and program take {length} tokens, more than a row "
                                  f"(config.sft.row_tokens={self.config.row_tokens}). Fix: "
                                  f"raise it.")
        return Example(task.task_id, prompt, np.asarray(response, np.int32), careless)


_EMPTY_CHAT = ProcessedChat(
    text="", input_ids=np.zeros(0, np.int32), mm_token_type_ids=np.zeros(0, np.int32),
    position_ids=np.zeros((3, 0), np.int32), rope_delta=0,
    pixel_values=np.zeros((0, 0), np.float32), image_grid_thw=np.zeros((0, 3), np.int64))


def _dropped(task: Task, reason: str) -> Example:
    """A task whose example cannot be trained keeps no tokens: the step trains on the others, the
    shapes stay the same, the run goes on; counted in sft/dropped_examples."""
    log.warning("warm start: task %s left out of its step: %s", task.task_id, reason)
    return Example(task.task_id, _EMPTY_CHAT, np.zeros(0, np.int32), frozenset(), dropped=True)


def pack_supervised(model_config: Qwen3VLConfig, examples: Sequence[Example], *,
                    config: SftConfig, context: TeacherContextConfig, slot_patches: int,
                    target_images: bool) -> tuple[SupervisedBatch, list[bool]]:
    """The step's inputs, its examples packed end to end into `config.rows` rows
    (sdpo_jax.sequences.pack_rows), with image slots for each example's target image (when
    shown) and each revision's render of its careless attempt; and, per example, whether it
    found room (one that did not sits out this step, logged)."""
    slots = (config.examples_per_step * int(target_images)
             + config.revisions_per_step * int(context.show_render))
    packed = pack_rows(model_config, [e.prompt for e in examples],
                       [e.response for e in examples], rows=config.rows,
                       width=config.row_tokens, image_slots=slots, slot_patches=slot_patches,
                       what="warm-start example")
    for example, placed in zip(examples, packed.placed):
        if not placed and not example.dropped:
            log.warning("warm start: task %s found no room in the step's %d rows of %d tokens "
                        "(config.sft.rows, row_tokens)", example.task_id, config.rows,
                        config.row_tokens)
    return SupervisedBatch(packed.sequences, packed.targets, packed.loss_mask), packed.placed
