"""The papers' columns of the three benchmarks, per item and aggregated, for
`python -m sdpo_jax.evaluate --benchmark chartmimic|design2code|aeslides`.

* ChartMimic Direct Mimic: Exec; Low = mean of the text, layout, type and colour F1s under
  ChartMimic's own rule (a view empty on both sides scores 0; the chart env's `chartmimic_*`
  parts); High = the judge's score (sdpo_jax.judge) of the render against the target's, only
  when a judge is configured; Overall = (Low + High) / 2.
* Design2Code: Block, Text, Position, Colour (the official matching, envs.web.design2code) and
  CLIP (sdpo_jax.clip_score, only with a CLIP model); SSIM, the project's stand-in for CLIP, is
  kept as an extra column labelled as such.
* AeSlides: the four measures as rewards in [0, 1] (aspect ratio, whitespace, collision,
  imbalance; envs.slide.aeslides) and their mean.

A program that did not run scores 0 on every column (the benchmarks' rule: the item counts, the
chart or page does not). A column that cannot be had is None, never guessed: High and Overall
without a judge, CLIP without a model, and either of them for an item whose judge or CLIP call
failed (the reason goes in the item's `benchmark["notes"]`). Aggregates are means over the items
that have the column, with the count of those that lack it. Values are fractions in [0, 1] in
summary.json; the markdown table shows them x 100, as the papers do.
"""
from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from envs.data_folder import DATA_DIR_VARIABLE, data_folder
from envs.feedback import Feedback
from envs.task import Task
from sdpo_jax.judge import ChartJudge

if TYPE_CHECKING:
    from sdpo_jax.clip_score import ClipScorer
    from sdpo_jax.evaluation import Attempt


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark: its loader format, the data-folder files it is read from (the first that
    exists: prepare_data's output, then the development copy), its table columns (key, header)
    in order, and which env reward part gives each measured column."""

    name: str
    data_format: str
    files: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    parts: dict[str, str]

    def default_data(self) -> str:
        """The first of `files` in the data folder; FileNotFoundError saying how to get one."""
        for name in self.files:
            if os.path.isfile(os.path.join(data_folder(), name)):
                return name
        raise FileNotFoundError(
            f"no {' or '.join(self.files)} in the data folder {data_folder()}: prepare it with "
            f"`python -m sdpo_jax.prepare_data {self.name} SRC`, set ${DATA_DIR_VARIABLE} to a "
            f"folder holding it, or pass --data=FILE (README, 'Data')")


BENCHMARKS: dict[str, Benchmark] = {
    "chartmimic": Benchmark(
        "chartmimic", "chartmimic", ("chartmimic.jsonl", "chartmimic_direct_v1.jsonl"),
        (("exec", "Exec"), ("text", "Text"), ("layout", "Layout"), ("type", "Type"),
         ("color", "Colour"), ("low", "Low"), ("high", "High"), ("overall", "Overall")),
        {"text": "chartmimic_text", "layout": "chartmimic_layout", "type": "chartmimic_type",
         "color": "chartmimic_color", "low": "chartmimic_fidelity"}),
    "design2code": Benchmark(
        "design2code", "design2code", ("design2code.jsonl", "design2code_testset.jsonl"),
        (("exec", "Exec"), ("block", "Block"), ("text", "Text"), ("position", "Position"),
         ("color", "Colour"), ("clip", "CLIP"), ("ssim", "SSIM (extra, not CLIP)")),
        {"block": "d2c_block_match", "text": "d2c_text", "position": "d2c_position",
         "color": "d2c_color", "ssim": "d2c_visual_ssim"}),
    "aeslides": Benchmark(
        "aeslides", "aeslides", ("aeslides.jsonl", "aeslides_examples.jsonl"),
        (("exec", "Exec"), ("aspect_ratio", "Aspect ratio"), ("whitespace", "Whitespace"),
         ("collision", "Collision"), ("imbalance", "Imbalance"), ("mean", "Mean")),
        {"aspect_ratio": "aspect_ratio_reward", "whitespace": "whitespace_reward",
         "collision": "collision_reward", "imbalance": "imbalance_reward",
         "mean": "aeslides_avg"}),
}


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: use one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def measured_columns(bench: Benchmark, feedback: Feedback) -> dict[str, float]:
    """Exec and the columns the env measured (0 for a program that did not run, and for a
    measure the env could not take, such as a target that did not render)."""
    columns = {"exec": float(feedback.ok)}
    for column, part in bench.parts.items():
        columns[column] = float(feedback.reward_parts.get(part, 0.0)) if feedback.ok else 0.0
    return columns


class PageClip:
    """Design2Code's CLIP column: the reference and the candidate page rendered and captured
    here (a browser of this process: the env workers keep no text blocks), text blocks matched
    (the candidate's merged by the matching, as Design2Code masks them), then
    `ClipScorer.page_similarity`. Only built with --clip-model."""

    def __init__(self, scorer: ClipScorer):
        from envs.web.browser import Browser
        from envs.web.env import WebEnvConfig
        self.scorer = scorer
        self.config = WebEnvConfig()
        self.browser = Browser(self.config.browser)
        self._references: dict[str, Any] = {}

    def _capture(self, html: str, task: Task):
        from envs.web import design2code
        with self.browser.open(html, task.width, task.height) as page:
            return design2code.capture(page, self.config.screenshot_max_height)

    def __call__(self, task: Task, html: str) -> float:
        """The CLIP similarity of `html` to the task's reference; raises PageError if either
        page does not render here."""
        from envs.web.design2code import match_blocks
        if task.task_id not in self._references:
            self._references[task.task_id] = self._capture(task.target or "", task)
        reference = self._references[task.task_id]
        candidate = self._capture(html, task)
        _, candidate_blocks, _ = match_blocks(list(reference.blocks), list(candidate.blocks))
        return self.scorer.page_similarity(
            reference.screenshot, candidate.screenshot, [b.bbox for b in reference.blocks],
            [b.bbox for b in candidate_blocks])

    def close(self) -> None:
        self.browser.close()


class BenchmarkScorer:
    """Gives judged attempts their benchmark columns (`attempt.benchmark`, reasons for absent
    ones in `attempt.benchmark["notes"]`): the env's measures, the judge's High for ChartMimic,
    CLIP for Design2Code."""

    def __init__(self, bench: Benchmark, judge: ChartJudge | None = None,
                 clip: PageClip | None = None, judge_workers: int = 4):
        self.bench = bench
        self.judge = judge if bench.name == "chartmimic" else None
        self.clip = clip if bench.name == "design2code" else None
        self.judge_workers = judge_workers

    def __call__(self, tasks: Sequence[Task], attempts: Sequence[Attempt],
                 target_images: Sequence[Image.Image | None]) -> None:
        """Score `attempts` of `tasks` in place; target_images[i] is tasks[i]'s reference
        render (what the judge compares with)."""
        index = {t.task_id: i for i, t in enumerate(tasks)}
        notes: list[dict[str, Any]] = [{} for _ in attempts]
        for attempt in attempts:
            attempt.benchmark = measured_columns(self.bench, attempt.feedback)
        if self.bench.name == "chartmimic":
            self._high(attempts, [target_images[index[a.task_id]] for a in attempts], notes)
        if self.bench.name == "design2code":
            self._clip(attempts, [tasks[index[a.task_id]] for a in attempts], notes)
        for attempt, note in zip(attempts, notes):
            if note:
                attempt.benchmark["notes"] = note

    def _high(self, attempts: Sequence[Attempt], targets: Sequence[Image.Image | None],
              notes: list[dict[str, Any]]) -> None:
        """High and Overall: absent without a judge; 0 for a chart that did not run; else the
        judge's score / 100, or absent (reason noted) when the judge gave none."""
        asked = [i for i, a in enumerate(attempts) if self.judge and a.feedback.ok
                 and a.feedback.render_png is not None and targets[i] is not None]
        results = self.judge.judge_all([(_png(targets[i]), attempts[i].feedback.render_png)
                                        for i in asked], self.judge_workers) if asked else []
        verdicts = dict(zip(asked, results))
        for i, attempt in enumerate(attempts):
            high = None
            if i in verdicts:
                verdict = verdicts[i]
                notes[i]["judge"] = verdict.to_json()
                high = None if verdict.score is None else verdict.score / 100.0
            elif self.judge and not attempt.feedback.ok:
                high = 0.0
            elif self.judge:
                notes[i]["judge"] = {"score": None, "reason": "no reference render to judge "
                                     "against (the task's target did not render)"}
            columns = attempt.benchmark
            columns["high"] = high
            columns["overall"] = None if high is None else (columns["low"] + high) / 2

    def _clip(self, attempts: Sequence[Attempt], tasks: Sequence[Task],
              notes: list[dict[str, Any]]) -> None:
        """CLIP: absent without a model; 0 for a page that did not render; else the
        similarity, or absent (reason noted) when the capture failed here."""
        from envs.web.browser import PageError
        for attempt, task, note in zip(attempts, tasks, notes):
            clip = None
            if self.clip is not None and not attempt.feedback.ok:
                clip = 0.0
            elif self.clip is not None:
                try:
                    clip = self.clip(task, attempt.reply.program.code)
                except PageError as err:
                    note["clip"] = f"CLIP capture failed: {err}"
            attempt.benchmark["clip"] = clip


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def aggregate(bench: Benchmark, rows: Sequence[dict[str, Any]]) -> dict[str, float | int | None]:
    """`<benchmark>/<column>`: the mean over the rows that have the column (None if none has
    it), and `<benchmark>/<column>_missing`: how many rows lack it, when some do."""
    out: dict[str, float | int | None] = {}
    for column, _ in bench.columns:
        values = [row.get("benchmark", {}).get(column) for row in rows]
        present = [v for v in values if v is not None]
        out[f"{bench.name}/{column}"] = float(np.mean(present)) if present else None
        if present and len(present) < len(values):
            out[f"{bench.name}/{column}_missing"] = len(values) - len(present)
    return out


def paper_table(bench: Benchmark, summary: dict[str, Any], candidate: str) -> str:
    """The benchmark's row as a markdown table, values x 100; "n/a" for an absent column,
    "(k missing)" where some items lack it."""
    header = ["candidate", "items"] + [name for _, name in bench.columns]
    cells = [candidate, str(summary.get("attempts", 0))]
    for column, _ in bench.columns:
        value = summary.get(f"{bench.name}/{column}")
        missing = summary.get(f"{bench.name}/{column}_missing")
        cell = "n/a" if value is None else f"{100 * value:.1f}"
        cells.append(cell + (f" ({missing} missing)" if missing else ""))
    return "\n".join(["| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header),
                      "| " + " | ".join(cells) + " |"])
