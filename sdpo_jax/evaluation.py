"""Evaluating a policy on held-out tasks: sample, judge, and summarise, in one place for the
`python -m sdpo_jax.evaluate` command and the trainer's periodic evaluation.

    evaluator = Evaluator(processor, pool, EvalConfig(...), context=run.context)
    report = evaluator(model, tasks, target_images)   # items + summary
    report.summary["defect_free_rate"], report.table()

Per task, `samples` attempts from the sampler (temperature 0: greedy), each reply read once
(sdpo_jax.replies) and its program judged by the env pool. With `with_feedback`, every attempt
that failed or has defects gets a second attempt whose prompt is the teacher's (the task plus
the privileged context of the first attempt: render, defect table with lines, or error log, by
sdpo_jax.teacher_context): the policy as its own teacher. Its "teacher uplift" is how much the
defect-free rate rises when those revisions replace the flawed first attempts.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from envs.check import overlay
from envs.feedback import Feedback
from envs.pool import EnvPool
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.checks import require_positive_ints
from sdpo_jax.replies import Reply, read_replies
from sdpo_jax.sampler import Prompt, Sampler, SamplerConfig
from sdpo_jax.sampling import Sampling
from sdpo_jax.teacher_context import TeacherContextConfig, student_messages, teacher_messages

PROGRAM_SUFFIX = {"python": ".py", "html": ".html"}


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """samples: attempts per task; temperature: 0 is greedy; max_new_tokens: the reply budget;
    prompts_per_call: prompts sampled per sampler call; with_feedback: also measure the policy
    with its first attempt's feedback in the prompt (the teacher uplift)."""

    samples: int
    temperature: float
    max_new_tokens: int
    max_prompt_tokens: int
    prompts_per_call: int
    with_feedback: bool

    def __post_init__(self):
        require_positive_ints("EvalConfig", self, ("samples", "max_new_tokens",
                                                   "max_prompt_tokens", "prompts_per_call"))
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"EvalConfig.temperature = {self.temperature!r} is invalid: "
                             f"expected a number >= 0 (0: greedy)")


@dataclasses.dataclass
class Attempt:
    """One judged reply to one task."""

    task_id: str
    sample: int
    language: str
    reply: Reply
    feedback: Feedback

    @property
    def defect_free(self) -> bool:
        return self.feedback.ok and not self.feedback.defects

    def scores(self) -> dict[str, Any]:
        f = self.feedback
        return {"task_id": self.task_id, "sample": self.sample, "ok": f.ok,
                "defect_free": self.defect_free, "reward": float(f.reward),
                "fidelity": f.reward_parts.get("fidelity"),
                "defect_kinds": sorted({d.kind for d in f.defects}),
                "error": None if f.error is None else f.error.to_json(),
                "response_tokens": int(len(self.reply.token_ids))}


@dataclasses.dataclass
class EvalReport:
    """First attempts (and, with feedback, the revisions of the flawed ones) and their summary."""

    attempts: list[Attempt]
    revisions: dict[tuple[str, int], Attempt]

    @property
    def summary(self) -> dict[str, float | None]:
        return summarise(self.attempts, self.revisions)

    def table(self) -> str:
        """The summary as a markdown table (one row per figure)."""
        rows = ["| figure | value |", "|---|---|"]
        for name, value in self.summary.items():
            rows.append(f"| {name} | {value:.3f} |" if isinstance(value, float)
                        else f"| {name} | {value} |")
        return "\n".join(rows)

    def write(self, out: str) -> None:
        """summary.json, summary.md, and per attempt its program, render, defect overlay and
        feedback under items/<task>/<sample>[/revision]."""
        os.makedirs(out, exist_ok=True)
        for attempt in self.attempts:
            folder = os.path.join(out, "items", _safe(attempt.task_id), str(attempt.sample))
            _write_attempt(folder, attempt)
            revision = self.revisions.get((attempt.task_id, attempt.sample))
            if revision is not None:
                _write_attempt(os.path.join(folder, "revision"), revision)
        with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
            json.dump({"summary": self.summary,
                       "items": [a.scores() for a in self.attempts]}, f, indent=1)
        with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
            f.write(self.table() + "\n")


def summarise(attempts: Sequence[Attempt], revisions: dict[tuple[str, int], Attempt]
              ) -> dict[str, float | None]:
    """Execution rate, defect-free rate, each defect kind's rate (share of attempts with at
    least one defect of that kind), mean fidelity (over attempts that report one), reward and
    response length (fidelity None when no attempt reports one); with revisions, the defect-free rate when they replace the flawed first
    attempts and its rise over the plain one (the teacher uplift)."""
    n = max(len(attempts), 1)
    kinds = Counter(kind for a in attempts for kind in {d.kind for d in a.feedback.defects})
    fidelity = [a.feedback.reward_parts["fidelity"] for a in attempts
                if "fidelity" in a.feedback.reward_parts]
    out = {"attempts": len(attempts),
           "exec_rate": sum(a.feedback.ok for a in attempts) / n,
           "defect_free_rate": sum(a.defect_free for a in attempts) / n,
           "fidelity": float(np.mean(fidelity)) if fidelity else None,
           "reward": float(np.mean([a.feedback.reward for a in attempts])) if attempts else 0.0,
           "response_tokens": float(np.mean([len(a.reply.token_ids) for a in attempts]))
           if attempts else 0.0}
    out.update({f"defect_rate/{kind}": count / n for kind, count in sorted(kinds.items())})
    if revisions:
        fixed = [revisions.get((a.task_id, a.sample)) for a in attempts]
        with_feedback = sum(a.defect_free or (r is not None and r.defect_free)
                            for a, r in zip(attempts, fixed)) / n
        out.update({"revised": len(revisions),
                    "revision_defect_free_rate": sum(r.defect_free for r in revisions.values())
                    / len(revisions),
                    "defect_free_rate_with_feedback": with_feedback,
                    "teacher_uplift": with_feedback - out["defect_free_rate"]})
    return out


class Evaluator:
    """Samples and judges attempts (see the module docstring); one per model family (its
    sampler keeps compiled programs across calls)."""

    def __init__(self, processor: Qwen3VLProcessor, pool: EnvPool, config: EvalConfig,
                 context: TeacherContextConfig, suppress_token_ids: tuple[int, ...] | None = None,
                 mesh=None):
        self.processor = processor
        self.pool = pool
        self.config = config
        self.context = context
        sampling = Sampling(temperature=config.temperature, top_k=0, top_p=1.0)
        self.sampler = Sampler(SamplerConfig(
            group_size=config.samples, max_new_tokens=config.max_new_tokens, sampling=sampling,
            prompt_bucket=config.max_prompt_tokens, suppress_token_ids=suppress_token_ids),
            processor.tokenizer, mesh=mesh)
        self.revision_sampler = Sampler(dataclasses.replace(
            self.sampler.config, group_size=1, prompt_bucket=context.max_prompt_tokens),
            processor.tokenizer, mesh=mesh)

    def __call__(self, model, tasks: Sequence[Task], target_images: Sequence[Image.Image | None],
                 seed: int = 0) -> EvalReport:
        chats = [self.processor(student_messages(t, im)) for t, im in zip(tasks, target_images)]
        report = self.judge(tasks, self._sample(self.sampler, model, tasks, chats, seed))
        if self.config.with_feedback:
            report.revisions = self._revise(model, tasks, target_images, report.attempts, seed)
        return report

    def judge(self, tasks: Sequence[Task], replies: Sequence[Reply]) -> EvalReport:
        """Judge given replies (each answering tasks[reply.prompt_index]; a task's replies are
        its samples 0, 1, ... in order): sampled ones, or fixed programs such as the references."""
        return EvalReport(self._attempts(tasks, replies), {})

    def _attempts(self, tasks: Sequence[Task], replies: Sequence[Reply]) -> list[Attempt]:
        feedbacks = self.pool.map([(tasks[r.prompt_index], r.program.code) for r in replies])
        seen: Counter[int] = Counter()
        attempts = []
        for reply, feedback in zip(replies, feedbacks):
            task = tasks[reply.prompt_index]
            attempts.append(Attempt(task.task_id, seen[reply.prompt_index],
                                    domain_spec(task.domain).language, reply, feedback))
            seen[reply.prompt_index] += 1
        return attempts

    def _revise(self, model, tasks, target_images, attempts: list[Attempt], seed: int
                ) -> dict[tuple[str, int], Attempt]:
        """Second attempts of the flawed first ones, prompted with their privileged context."""
        index = {t.task_id: i for i, t in enumerate(tasks)}
        flawed = [a for a in attempts if not a.defect_free]
        if not flawed:
            return {}
        revision_tasks = [tasks[index[a.task_id]] for a in flawed]
        chats = [self.processor(teacher_messages(t, target_images[index[t.task_id]], a.feedback,
                                                 self.context))
                 for t, a in zip(revision_tasks, flawed)]
        replies = self._sample(self.revision_sampler, model, revision_tasks, chats, seed + 1)
        return {(a.task_id, a.sample): dataclasses.replace(revised, sample=a.sample)
                for a, revised in zip(flawed, self._attempts(revision_tasks, replies))}

    def _sample(self, sampler: Sampler, model, tasks: Sequence[Task],
                chats: Sequence[ProcessedChat], seed: int) -> list[Reply]:
        """Replies to every chat, `sampler.config.group_size` per chat, prompt-major."""
        tokenizer = self.processor.tokenizer
        languages = [domain_spec(t.domain).language for t in tasks]
        replies: list[Reply] = []
        step = self.config.prompts_per_call
        for start in range(0, len(chats), step):
            prompts = [Prompt.from_chat(start + i, chat)
                       for i, chat in enumerate(chats[start:start + step])]
            rollouts = sampler(model, prompts, seed)
            replies += read_replies(tokenizer, rollouts.tokens, rollouts.lengths,
                                    rollouts.prompt_ids, languages)
        return replies


def _write_attempt(folder: str, attempt: Attempt) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "program" + PROGRAM_SUFFIX[attempt.language]), "w",
              encoding="utf-8") as f:
        f.write(attempt.reply.program.code)
    with open(os.path.join(folder, "feedback.json"), "w", encoding="utf-8") as f:
        json.dump(attempt.feedback.to_json(with_elements=False), f, indent=1)
    if attempt.feedback.render_png is not None:
        with open(os.path.join(folder, "render.png"), "wb") as f:
            f.write(attempt.feedback.render_png)
        with open(os.path.join(folder, "defects.png"), "wb") as f:
            f.write(overlay(attempt.feedback))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
