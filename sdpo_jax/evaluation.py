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

Fixed programs are judged the same way (`Evaluator.judge`, or `judge_replies` without a model):
`reference_replies` makes each task's own reference its reply, the ceiling of a benchmark.
Everything summarised is read from per-item rows (`Attempt.scores()`), which `EvalReport.write`
stores in each item's folder as `scores.json`, written last: `ItemStore` finds the items a
previous, interrupted evaluation finished, so the `evaluate` command resumes without re-running
them and summarises old and new rows alike.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from envs.check import overlay
from envs.code_extract import ExtractedCode
from envs.feedback import Feedback
from envs.pool import EnvPool
from envs.program import statements
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from sdpo_jax.checks import require_positive_ints
from sdpo_jax.replies import Reply, read_replies
from sdpo_jax.sampler import Prompt, Sampler, SamplerConfig
from sdpo_jax.sampling import Sampling
from sdpo_jax.teacher_context import TeacherContextConfig, student_messages, teacher_messages

PROGRAM_SUFFIX = {"python": ".py", "html": ".html"}
SCORES_FILE = "scores.json"  # an item's row, written after everything else of the item
RUN_FILE = "run.json"        # what an evaluation folder holds, checked when it is resumed


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
    benchmark: dict[str, Any] = dataclasses.field(default_factory=dict)  # its paper columns

    @property
    def defect_free(self) -> bool:
        return self.feedback.ok and not self.feedback.defects

    def scores(self) -> dict[str, Any]:
        """The attempt's row: everything the summary reads (resumed items are rows only)."""
        f = self.feedback
        row = {"task_id": self.task_id, "sample": self.sample, "ok": f.ok,
               "defect_free": self.defect_free, "reward": float(f.reward),
               "fidelity": f.reward_parts.get("fidelity"),
               "defect_kinds": sorted({d.kind for d in f.defects}),
               "error": None if f.error is None else f.error.to_json(),
               "response_tokens": int(len(self.reply.token_ids))}
        return row | ({"benchmark": self.benchmark} if self.benchmark else {})


@dataclasses.dataclass
class EvalReport:
    """First attempts (and, with feedback, the revisions of the flawed ones) and their summary."""

    attempts: list[Attempt]
    revisions: dict[tuple[str, int], Attempt]

    def rows(self) -> list[dict[str, Any]]:
        """One row per first attempt, its revision's row under "revision"."""
        rows = []
        for attempt in self.attempts:
            revision = self.revisions.get((attempt.task_id, attempt.sample))
            rows.append(attempt.scores() | ({} if revision is None
                                            else {"revision": revision.scores()}))
        return rows

    @property
    def summary(self) -> dict[str, float | None]:
        return summarise(self.rows())

    def table(self) -> str:
        return summary_table(self.summary)

    def write(self, out: str) -> None:
        """Every item (`write_items`), then summary.json and summary.md."""
        self.write_items(out)
        write_summary(out, self.summary, self.rows(), self.table())

    def write_items(self, out: str) -> None:
        """Per attempt its program, render, defect overlay and feedback under
        items/<task>/<sample>[/revision], and last its row (scores.json: the item is done)."""
        for attempt, row in zip(self.attempts, self.rows()):
            folder = item_folder(out, attempt.task_id, attempt.sample)
            _write_attempt(folder, attempt)
            revision = self.revisions.get((attempt.task_id, attempt.sample))
            if revision is not None:
                _write_attempt(os.path.join(folder, "revision"), revision)
            _write_json(os.path.join(folder, SCORES_FILE), row)


def summary_table(summary: dict[str, Any]) -> str:
    """A summary as a markdown table (one row per figure)."""
    rows = ["| figure | value |", "|---|---|"]
    for name, value in summary.items():
        rows.append(f"| {name} | {value:.3f} |" if isinstance(value, float)
                    else f"| {name} | {value} |")
    return "\n".join(rows)


def write_summary(out: str, summary: dict[str, Any], rows: Sequence[dict[str, Any]],
                  markdown: str) -> None:
    """summary.json (the summary and every item's row) and summary.md."""
    _write_json(os.path.join(out, "summary.json"), {"summary": summary, "items": list(rows)})
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(markdown + "\n")


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Execution rate, defect-free rate, each defect kind's rate (share of attempts with at
    least one defect of that kind), mean fidelity (over attempts that report one; None when
    none does), reward and response length; with revisions (a row's "revision"), the
    defect-free rate when they replace the flawed first attempts and its rise over the plain
    one (the teacher uplift)."""
    n = max(len(rows), 1)
    kinds = Counter(kind for row in rows for kind in row["defect_kinds"])
    fidelity = [row["fidelity"] for row in rows if row["fidelity"] is not None]
    out = {"attempts": len(rows),
           "exec_rate": sum(row["ok"] for row in rows) / n,
           "defect_free_rate": sum(row["defect_free"] for row in rows) / n,
           "fidelity": float(np.mean(fidelity)) if fidelity else None,
           "reward": float(np.mean([row["reward"] for row in rows])) if rows else 0.0,
           "response_tokens": float(np.mean([row["response_tokens"] for row in rows]))
           if rows else 0.0}
    out.update({f"defect_rate/{kind}": count / n for kind, count in sorted(kinds.items())})
    revisions = [row["revision"] for row in rows if "revision" in row]
    if revisions:
        with_feedback = sum(row["defect_free"] or row.get("revision", {}).get("defect_free", False)
                            for row in rows) / n
        out.update({"revised": len(revisions),
                    "revision_defect_free_rate": sum(r["defect_free"] for r in revisions)
                    / len(revisions),
                    "defect_free_rate_with_feedback": with_feedback,
                    "teacher_uplift": with_feedback - out["defect_free_rate"]})
    return out


def reference_replies(tasks: Sequence[Task]) -> list[Reply]:
    """Each task's own reference program or page as its one reply (no tokens): scored as a
    candidate it is a benchmark's ceiling. A task without a reference answers nothing (an empty
    program, which its env records as a failed item)."""
    replies = []
    for index, task in enumerate(tasks):
        code = task.target or ""
        language = domain_spec(task.domain).language
        replies.append(Reply(prompt_index=index, token_ids=np.zeros(0, np.int32), text=code,
                             token_spans=(), program=ExtractedCode(code, 0, False, 0),
                             statements=tuple(statements(code, language)),
                             token_lines=np.zeros(0, np.int32)))
    return replies


def judge_replies(pool: EnvPool, tasks: Sequence[Task], replies: Sequence[Reply]
                  ) -> list[Attempt]:
    """Each reply's program judged by the env pool (a reply answers tasks[reply.prompt_index];
    a task's replies are its samples 0, 1, ... in order)."""
    feedbacks = pool.map([(tasks[r.prompt_index], r.program.code) for r in replies])
    seen: Counter[int] = Counter()
    attempts = []
    for reply, feedback in zip(replies, feedbacks):
        task = tasks[reply.prompt_index]
        attempts.append(Attempt(task.task_id, seen[reply.prompt_index],
                                domain_spec(task.domain).language, reply, feedback))
        seen[reply.prompt_index] += 1
    return attempts


class ItemStore:
    """The finished items of an evaluation folder, for resuming it. `identity` says what the
    folder evaluates (candidate, data, settings); a folder written for another identity is
    refused rather than mixed."""

    def __init__(self, out: str, identity: dict[str, Any]):
        self.out = out
        path = os.path.join(out, RUN_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                previous = json.load(f)
            changed = sorted(k for k in previous.keys() | identity.keys()
                             if previous.get(k) != identity.get(k))
            if changed:
                what = "; ".join(f"{k}: {previous.get(k)!r} there, {identity.get(k)!r} now"
                                 for k in changed)
                raise ValueError(f"{out} holds an evaluation of another run ({what}); give a "
                                 f"new --out, or delete the folder to start over")
        else:
            os.makedirs(out, exist_ok=True)
            _write_json(path, identity)

    def row(self, task_id: str, sample: int) -> dict[str, Any] | None:
        """The item's row if a previous run finished it (an unreadable one counts as not)."""
        try:
            with open(os.path.join(item_folder(self.out, task_id, sample), SCORES_FILE),
                      encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def done(self, task: Task, samples: int) -> bool:
        return all(self.row(task.task_id, s) is not None for s in range(samples))

    def rows(self, tasks: Iterable[Task], samples: int) -> list[dict[str, Any]]:
        """The finished rows of `tasks`, in task then sample order."""
        return [row for t in tasks for s in range(samples)
                if (row := self.row(t.task_id, s)) is not None]


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
        """Judge given replies (`judge_replies`): sampled ones, or fixed programs."""
        return EvalReport(judge_replies(self.pool, tasks, replies), {})

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
                for a, revised in zip(flawed, judge_replies(self.pool, revision_tasks, replies))}

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


def item_folder(out: str, task_id: str, sample: int) -> str:
    return os.path.join(out, "items", _safe(task_id), str(sample))


def _write_json(path: str, value: Any) -> None:
    """Written whole or not at all (a crash mid-write leaves no half file to resume from)."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def _write_attempt(folder: str, attempt: Attempt) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "program" + PROGRAM_SUFFIX[attempt.language]), "w",
              encoding="utf-8") as f:
        f.write(attempt.reply.program.code)
    _write_json(os.path.join(folder, "feedback.json"), attempt.feedback.to_json())
    if attempt.feedback.render_png is not None:
        with open(os.path.join(folder, "render.png"), "wb") as f:
            f.write(attempt.feedback.render_png)
        with open(os.path.join(folder, "defects.png"), "wb") as f:
            f.write(overlay(attempt.feedback))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
